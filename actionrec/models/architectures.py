"""Built-in architectures: torchvision's video models, a small 3D CNN for CPUs, order-blind baselines.

Importing this module registers them; ``get_architecture`` and ``list_architectures`` are the
lookups (they see architectures registered elsewhere too).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn
from torchvision.models import ResNet18_Weights

from actionrec.data.spec import KINETICS_MEAN, KINETICS_STD, InputSpec
from actionrec.errors import ModelError
from actionrec.models.registry import Architecture, register, registered, registered_names
from actionrec.models.weights import load_cached_weights, weights_member

# 16 frames at 8 per second: 2 s, the length of the synthetic videos (16 fps, 32 frames).
_SMALL = InputSpec(frames_per_clip=16, sampling="fps", sample_fps=8.0, short_side=64, crop_size=64,
                   mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225))


# The same window over the whole width of a 16:9 frame (64 x 112): real footage puts the action
# anywhere in the picture, and a square centre crop drops both sides.
_WIDE = _SMALL.replace(crop_width=112)


def get_architecture(name: str) -> Architecture:
    return registered(name)


def list_architectures() -> list[str]:
    return registered_names()


# -- small networks that train on two CPU cores --------------------------------------------------
def _conv(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class Tiny3D(nn.Module):
    """Four 3D conv blocks and global max pooling (max beats average for small moving objects).

    With ``motion``, the network sees each frame beside its difference from the previous one (TSN's
    RGB-difference modality, computed inside the network so every engine and the decoder stay as
    they are): on small real sets a network fed RGB alone learns appearance, which does not transfer,
    while frame differences carry the motion that defines the action."""

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.2, temporal: bool = True,
                 motion: bool = False) -> None:
        super().__init__()
        kt = 3 if temporal else 1
        tpool = 2 if temporal else 1
        w = width
        self.motion = motion
        self.features = nn.Sequential(
            _conv(6 if motion else 3, w, (kt, 5, 5), stride=(1, 2, 2)),
            nn.MaxPool3d((1, 2, 2)),
            _conv(w, 2 * w, (kt, 3, 3)),
            nn.MaxPool3d((tpool, 2, 2)),
            _conv(2 * w, 4 * w, (kt, 3, 3)),
            nn.MaxPool3d((tpool, 2, 2)),
            _conv(4 * w, 8 * w, (kt, 3, 3)),
        )
        self.temporal = temporal
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))

    def forward(self, clip_ncthw: torch.Tensor) -> torch.Tensor:
        if self.motion:  # N, 3, T, H, W -> N, 6, T - 1, H, W: each frame and what changed since the last
            later = clip_ncthw[:, :, 1:]
            clip_ncthw = torch.cat([later, later - clip_ncthw[:, :, :-1]], dim=1)
        x = self.features(clip_ncthw)  # N, C, T', H', W'
        if self.temporal:
            x = torch.amax(x, dim=(2, 3, 4))
        else:
            # Order-blind on purpose: pool each frame spatially, then average over time.
            x = torch.amax(x, dim=(3, 4)).mean(dim=2)
        return self.head(x)


@register("tiny3d", default_spec=_SMALL, head="head.1",
          description="small 3D CNN (~0.3 M parameters) for CPU training and tests")
def tiny3d(num_classes: int, width: int = 16, dropout: float = 0.2, pretrained: str | None = None) -> nn.Module:
    _no_pretrained("tiny3d", pretrained)
    return Tiny3D(num_classes, width=width, dropout=dropout, temporal=True)


@register("motion3d", default_spec=_WIDE, head="head.1",
          description="tiny3d fed frames and frame differences (RGB-difference motion input, ~0.3 M parameters)")
def motion3d(num_classes: int, width: int = 16, dropout: float = 0.2, pretrained: str | None = None) -> nn.Module:
    _no_pretrained("motion3d", pretrained)
    return Tiny3D(num_classes, width=width, dropout=dropout, temporal=True, motion=True)


@register(
    "tiny2d",
    default_spec=_SMALL,
    head="head.1",
    order_aware=False,
    description="tiny3d with 2D kernels and time averaging: order-blind baseline of the same size",
)
def tiny2d(num_classes: int, width: int = 16, dropout: float = 0.2, pretrained: str | None = None) -> nn.Module:
    _no_pretrained("tiny2d", pretrained)
    return Tiny3D(num_classes, width=width, dropout=dropout, temporal=False)


class FrameAveraging(nn.Module):
    """TSN consensus: a 2D network scores every frame, the scores are averaged (order-blind)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, clip_ncthw: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = clip_ncthw.shape
        frames_nchw = clip_ncthw.transpose(1, 2).reshape(n * t, c, h, w)
        return self.backbone(frames_nchw).reshape(n, t, -1).mean(dim=1)


_TSN = InputSpec(frames_per_clip=8, sampling="spread", frame_stride=1, sample_fps=None, short_side=128,
                 crop_size=112, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@register(
    "tsn_resnet18",
    default_spec=_TSN,
    head="backbone.fc",
    order_aware=False,
    description="TSN-style ResNet-18 over frames with averaged scores (order-blind 2D baseline)",
    weights={"IMAGENET1K_V1": _TSN},
    urls={"IMAGENET1K_V1": ResNet18_Weights.IMAGENET1K_V1.url},
)
def tsn_resnet18(num_classes: int, pretrained: str | None = None) -> nn.Module:
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    if pretrained:
        weights = weights_member(ResNet18_Weights, pretrained, "tsn_resnet18")
        net.load_state_dict(load_cached_weights(weights.url))
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return FrameAveraging(net)


# -- torchvision video models with optional Kinetics-400 weights -------------------------------
def _no_pretrained(arch: str, pretrained: str | None) -> None:
    if pretrained:
        raise ModelError(f"{arch} has no pretrained weights (got {pretrained!r})")


def _torchvision_video(arch: str, enum_name: str, head: str) -> Any:
    def build(num_classes: int, pretrained: str | None = None, dropout: float | None = None) -> nn.Module:
        import torchvision.models.video as tvv

        factory = getattr(tvv, arch)
        model = factory(weights=None, num_classes=400 if pretrained else num_classes)
        if pretrained:
            weights = weights_member(getattr(tvv, enum_name), pretrained, arch)
            model.load_state_dict(load_cached_weights(weights.url))
            if num_classes != len(weights.meta["categories"]):
                replace_head(model, head, num_classes)
        return model

    return build


def replace_head(model: nn.Module, head: str, num_classes: int) -> None:
    """Swap the last classification layer (named by dotted path) for a fresh one with ``num_classes``."""
    *parents, last = head.split(".")
    owner = model
    for part in parents:
        owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
    old = owner[int(last)] if last.isdigit() else getattr(owner, last)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes)
    elif isinstance(old, nn.Conv3d):
        new = nn.Conv3d(old.in_channels, num_classes, old.kernel_size, bias=old.bias is not None)
    else:  # pragma: no cover - guarded by the table below
        raise ModelError(f"cannot replace head of type {type(old).__name__}")
    if last.isdigit():
        owner[int(last)] = new
    else:
        setattr(owner, last, new)


def published_spec(weights: Any) -> InputSpec:
    """The input spec a torchvision video weight set was evaluated with, read from its own metadata:
    clip length and frame rate from its docs (``frame_rate=15``, ``clip_len=16``), resize, crop and
    normalisation from its transforms. A ``resize_size`` of two sides is matched by its short side."""
    docs = dict(re.findall(r"`(\w+)=([\d.]+)`", weights.meta.get("_docs", "")))
    kw = dict(getattr(weights.transforms, "keywords", {}))
    crop = kw.get("crop_size", (112, 112))
    resize = kw.get("resize_size", (128, 171))
    return InputSpec(
        frames_per_clip=int(docs.get("clip_len", 16)),
        sampling="fps",
        sample_fps=float(docs.get("frame_rate", 15)),
        short_side=int(min(resize)),
        crop_size=int(crop[0] if isinstance(crop, tuple | list) else crop),
        mean=tuple(kw.get("mean", KINETICS_MEAN)),
        std=tuple(kw.get("std", KINETICS_STD)),
        extra={"eval_clips": int(docs.get("clips_per_video", 1)), "weights": weights.name},
    )


_TORCHVISION = {
    # arch: (weights enum, head path, description)
    "r3d_18": ("R3D_18_Weights", "fc", "ResNet3D-18 (Tran et al. 2018)"),
    "mc3_18": ("MC3_18_Weights", "fc", "mixed-convolution ResNet-18"),
    "r2plus1d_18": ("R2Plus1D_18_Weights", "fc", "R(2+1)D-18"),
    "s3d": ("S3D_Weights", "classifier.1", "S3D"),
    "mvit_v2_s": ("MViT_V2_S_Weights", "head.1", "MViT-v2-S (fixed 16x224x224 input)"),
    "swin3d_t": ("Swin3D_T_Weights", "head", "Video Swin-T"),
}


def _register_torchvision() -> None:
    import torchvision.models.video as tvv

    for arch, (enum_name, head, desc) in _TORCHVISION.items():
        specs = {w.name: published_spec(w) for w in getattr(tvv, enum_name)}
        register(arch, default_spec=specs["KINETICS400_V1"], head=head, description=f"torchvision {desc}",
                 weights=specs, urls={w.name: w.url for w in getattr(tvv, enum_name)})(_torchvision_video(arch, enum_name, head))


_register_torchvision()


def torchvision_categories(arch: str, weights: str) -> list[str]:
    """Class names that come with a torchvision weight set (Kinetics-400: 400 names), no download."""
    import torchvision.models.video as tvv

    if not get_architecture(arch).pretrained:
        raise ModelError(f"{arch} has no pretrained weights")
    if arch not in _TORCHVISION:
        return list(weights_member(ResNet18_Weights, weights, arch).meta["categories"])
    return list(weights_member(getattr(tvv, _TORCHVISION[arch][0]), weights, arch).meta["categories"])


def published_categories(arch: str, weights: str) -> list[str]:
    """Class names of a published weight set, from whoever publishes it. pytorchvideo's zoo is trained
    on Kinetics-400 with its classes in alphabetical order, torchvision's order: the same 400 names."""
    entry = get_architecture(arch)
    if entry.publisher != "pytorchvideo":
        return torchvision_categories(arch, weights)
    if weights not in entry.weights:
        raise ModelError(f"{arch} has no pretrained weights {weights!r}; choose one of {', '.join(entry.weights)}")
    import torchvision.models.video as tvv

    return list(tvv.R3D_18_Weights.KINETICS400_V1.meta["categories"])


# SlowFast, I3D and the transformers families register themselves on import.
from actionrec.models import families  # noqa: E402, F401
