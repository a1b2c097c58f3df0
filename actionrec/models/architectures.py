"""Built-in architectures: torchvision's video models, a small 3D CNN for CPUs, order-blind baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from actionrec.errors import ModelError, WeightsNotFoundError
from actionrec.models.registry import register
from actionrec.models.spec import KINETICS_MEAN, KINETICS_STD, InputSpec

_SMALL = InputSpec(frames_per_clip=16, sampling="stride", frame_stride=2, short_side=64, crop_size=64,
                   mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225))


# -- small networks that train on two CPU cores --------------------------------------------------
def _conv(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class Tiny3D(nn.Module):
    """Four 3D conv blocks and global max pooling (max beats average for small moving objects)."""

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.2, temporal: bool = True) -> None:
        super().__init__()
        kt = 3 if temporal else 1
        tpool = 2 if temporal else 1
        w = width
        self.features = nn.Sequential(
            _conv(3, w, (kt, 5, 5), stride=(1, 2, 2)),
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
        x = self.features(clip_ncthw)  # N, C, T', H', W'
        if self.temporal:
            x = torch.amax(x, dim=(2, 3, 4))
        else:
            # Order-blind on purpose: pool each frame spatially, then average over time.
            x = torch.amax(x, dim=(3, 4)).mean(dim=2)
        return self.head(x)


@register("tiny3d", default_spec=_SMALL, description="small 3D CNN (~0.3 M parameters) for CPU training and tests")
def tiny3d(num_classes: int, width: int = 16, dropout: float = 0.2, pretrained: str | None = None) -> nn.Module:
    _no_pretrained("tiny3d", pretrained)
    return Tiny3D(num_classes, width=width, dropout=dropout, temporal=True)


@register(
    "tiny2d",
    default_spec=_SMALL,
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


@register(
    "tsn_resnet18",
    default_spec=InputSpec(frames_per_clip=8, sampling="spread", frame_stride=1, short_side=128, crop_size=112,
                           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    order_aware=False,
    description="TSN-style ResNet-18 over frames with averaged scores (order-blind 2D baseline)",
    pretrained=("IMAGENET1K_V1",),
)
def tsn_resnet18(num_classes: int, pretrained: str | None = None) -> nn.Module:
    from torchvision.models import ResNet18_Weights, resnet18

    net = resnet18(weights=None)
    if pretrained:
        weights = _weights_enum(ResNet18_Weights, pretrained, "tsn_resnet18")
        net.load_state_dict(load_cached_weights(weights.url))
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return FrameAveraging(net)


# -- torchvision video models with optional Kinetics-400 weights -------------------------------
def weights_cache_path(url: str) -> Path:
    """Where torchvision keeps a downloaded weight file (``$TORCH_HOME/hub/checkpoints/<name>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_cached_weights(url: str) -> dict[str, torch.Tensor]:
    """Load pretrained weights from the local torch cache only: no download at run time."""
    path = weights_cache_path(url)
    if not path.exists():
        raise WeightsNotFoundError(
            f"pretrained weights are not in the local cache: put {Path(url).name} (from {url}) at {path} "
            "(or set TORCH_HOME to a folder whose hub/checkpoints holds it)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsNotFoundError(f"cannot read pretrained weights at {path}: {e}") from e


def _weights_enum(enum: Any, name: str, arch: str) -> Any:
    try:
        return enum[name]
    except KeyError:
        raise ModelError(
            f"{arch} has no pretrained weights {name!r}; choose one of {', '.join(m.name for m in enum)}"
        ) from None


def _no_pretrained(arch: str, pretrained: str | None) -> None:
    if pretrained:
        raise ModelError(f"{arch} has no pretrained weights (got {pretrained!r})")


def _torchvision_video(arch: str, enum_name: str, head: str) -> Any:
    def build(num_classes: int, pretrained: str | None = None, dropout: float | None = None) -> nn.Module:
        import torchvision.models.video as tvv

        factory = getattr(tvv, arch)
        model = factory(weights=None, num_classes=400 if pretrained else num_classes)
        if pretrained:
            weights = _weights_enum(getattr(tvv, enum_name), pretrained, arch)
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


_K400_112 = InputSpec(frames_per_clip=16, frame_stride=2, short_side=128, crop_size=112,
                      mean=KINETICS_MEAN, std=KINETICS_STD)
_TORCHVISION = {
    # arch: (weights enum, head path, input spec, description)
    "r3d_18": ("R3D_18_Weights", "fc", _K400_112, "ResNet3D-18 (Tran et al. 2018)"),
    "mc3_18": ("MC3_18_Weights", "fc", _K400_112, "mixed-convolution ResNet-18"),
    "r2plus1d_18": ("R2Plus1D_18_Weights", "fc", _K400_112, "R(2+1)D-18"),
    "s3d": ("S3D_Weights", "classifier.1",
            InputSpec(frames_per_clip=16, frame_stride=2, short_side=256, crop_size=224,
                      mean=KINETICS_MEAN, std=KINETICS_STD), "S3D"),
    "mvit_v2_s": ("MViT_V2_S_Weights", "head.1",
                  InputSpec(frames_per_clip=16, frame_stride=2, short_side=256, crop_size=224,
                            mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225)), "MViT-v2-S (fixed 16x224x224 input)"),
    "swin3d_t": ("Swin3D_T_Weights", "head",
                 InputSpec(frames_per_clip=16, frame_stride=2, short_side=256, crop_size=224,
                           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)), "Video Swin-T"),
}
for _arch, (_enum, _head, _spec, _desc) in _TORCHVISION.items():
    register(_arch, default_spec=_spec, description=f"torchvision {_desc}", pretrained=("KINETICS400_V1",))(
        _torchvision_video(_arch, _enum, _head)
    )


def torchvision_categories(arch: str, weights: str) -> list[str]:
    """Class names that come with a torchvision weight set (Kinetics-400: 400 names), no download."""
    import torchvision.models.video as tvv

    from actionrec.models.registry import get_architecture

    if not get_architecture(arch).pretrained:
        raise ModelError(f"{arch} has no pretrained weights")
    enum_name = _TORCHVISION[arch][0] if arch in _TORCHVISION else None
    if enum_name is None:
        from torchvision.models import ResNet18_Weights

        return list(_weights_enum(ResNet18_Weights, weights, arch).meta["categories"])
    return list(_weights_enum(getattr(tvv, enum_name), weights, arch).meta["categories"])
