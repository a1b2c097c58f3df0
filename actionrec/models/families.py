"""The textbook's model families on the seams every model uses (an NCTHW clip in, [N, K] logits out):

- SlowFast and I3D, built with pytorchvideo's builders so its model zoo's Kinetics-400 weights load
  key for key (``pytorchvideo:slowfast_r50``, ``pytorchvideo:i3d_r50``);
- transformers video classifiers (VideoMAE, TimeSformer, ViViT), loaded by ``hf:`` references and
  rebuilt from the transformers config a fine-tuned checkpoint carries in its ``arch_kwargs``.

pytorchvideo and transformers are imported inside the builders: a plain install imports actionrec
without them (``pip install 'actionrec[families]'`` adds them).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from actionrec.data.spec import InputSpec
from actionrec.errors import ConfigError, ModelError
from actionrec.models import hf
from actionrec.models.registry import register, registered
from actionrec.models.weights import load_cached_weights


def _int_arg(arch: str, name: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{arch}: {name} must be an integer from {low} to {high}, got {value!r}")
    return value


# -- SlowFast and I3D (pytorchvideo) ---------------------------------------------------------------
ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"
_PV_MEAN, _PV_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
# pytorchvideo's zoo evaluation (its hub tutorial and MODEL_ZOO): Kinetics at 30 fps, short side 256,
# 256 crops, 10 clips x 3 crops per video. SlowFast 8x8: 32 frames every 2nd (15 fps) for the fast
# pathway, every 4th of those (alpha) for the slow one. I3D 8x8: 8 frames every 8th (3.75 fps).
SLOWFAST_8X8 = InputSpec(frames_per_clip=32, sampling="fps", sample_fps=15.0, short_side=256, crop_size=256,
                         mean=_PV_MEAN, std=_PV_STD, extra={"eval_clips": 10, "weights": "SLOWFAST_8x8_R50"})
I3D_8X8 = InputSpec(frames_per_clip=8, sampling="fps", sample_fps=3.75, short_side=256, crop_size=256,
                    mean=_PV_MEAN, std=_PV_STD, extra={"eval_clips": 10, "weights": "I3D_8x8_R50"})
SLOWFAST_DEPTHS, RESNET_DEPTHS = (18, 50, 101, 152), (50, 101, 152)  # what pytorchvideo builds


class WindowAvgPool3d(nn.Module):
    """pytorchvideo's head pooling (a fixed window, stride 1), with the window shrunk to the input
    where the input is smaller: the published numbers at the published size, and tiny clips still run."""

    def __init__(self, kernel: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel = tuple(kernel)

    def forward(self, x_ncthw: torch.Tensor) -> torch.Tensor:
        window = tuple(min(k, int(s)) for k, s in zip(self.kernel, x_ncthw.shape[-3:], strict=True))
        return F.avg_pool3d(x_ncthw, window, stride=1)


class SlowFast(nn.Module):
    """pytorchvideo's SlowFast fed from one clip at the fast rate: the slow pathway is every
    ``alpha``-th frame of it (frames 0, alpha, 2 alpha, ...), taken here, so the sampler and the
    decoder stay the ones every model uses. ``blocks`` is pytorchvideo's, so zoo weights load as they are."""

    def __init__(self, net: nn.Module, alpha: int) -> None:
        super().__init__()
        self.blocks = net.blocks
        self.alpha = alpha

    def pathways(self, clip_ncthw: torch.Tensor) -> list[torch.Tensor]:
        return [clip_ncthw[:, :, :: self.alpha], clip_ncthw]

    def forward(self, clip_ncthw: torch.Tensor) -> torch.Tensor:
        x: Any = self.pathways(clip_ncthw)
        for block in self.blocks:
            x = block(x)
        return x


def _zoo_weights(arch: str, pretrained: str | None, width: int, depth: int, defaults: tuple[int, int]) -> Any:
    """The zoo state dict for ``pretrained`` (from the local cache), or None."""
    if not pretrained:
        return None
    entry = registered(arch)
    if pretrained not in entry.urls:
        raise ModelError(f"{arch} has no pretrained weights {pretrained!r}; choose one of {', '.join(entry.urls)}")
    if (width, depth) != defaults:
        raise ModelError(f"{arch}'s published weights are for width={defaults[0]} depth={defaults[1]}")
    loaded = load_cached_weights(entry.urls[pretrained])
    return loaded.get("model_state", loaded)  # the zoo's .pyth keeps the state dict under "model_state"


@contextmanager
def _quiet_import() -> Iterator[None]:
    """pytorchvideo (unmaintained since 2022) scripts a helper at import, which torch now warns about
    on every command that builds one of its models; the warning is not the user's to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
        yield


def _finish(model: nn.Module, state: Any, head: nn.Module, num_classes: int) -> nn.Module:
    if state is not None:
        model.load_state_dict(state)
        if num_classes != head.proj.out_features:
            head.proj = nn.Linear(head.proj.in_features, num_classes)
    return model


@register("slowfast_r50", default_spec=SLOWFAST_8X8, head="blocks.6.proj", publisher="pytorchvideo",
          description="SlowFast R50 8x8 (Feichtenhofer et al. 2019), pytorchvideo; one clip, slow path inside",
          weights={"SLOWFAST_8x8_R50": SLOWFAST_8X8}, urls={"SLOWFAST_8x8_R50": f"{ZOO}/SLOWFAST_8x8_R50.pyth"})
def slowfast_r50(num_classes: int, pretrained: str | None = None, width: int = 64, depth: int = 50, alpha: int = 4,
                 dropout: float = 0.5) -> nn.Module:
    """``width``: the slow pathway's stem channels (the fast one has 1/8 of them), a multiple of 8."""
    _int_arg("slowfast_r50", "width", width, 8, 512)
    _int_arg("slowfast_r50", "alpha", alpha, 1, 16)
    if width % 8 or depth not in SLOWFAST_DEPTHS:
        raise ConfigError(f"slowfast_r50: width must be a multiple of 8 and depth one of {SLOWFAST_DEPTHS}")
    hf.require("pytorchvideo")
    with _quiet_import():
        from pytorchvideo.models.slowfast import create_slowfast

    state = _zoo_weights("slowfast_r50", pretrained, width, depth, (64, 50))
    net = create_slowfast(model_depth=depth, model_num_class=400 if state is not None else num_classes,
                          dropout_rate=float(dropout), stem_dim_outs=(width, width // 8),
                          slowfast_fusion_conv_kernel_size=(7, 1, 1), slowfast_fusion_conv_stride=(alpha, 1, 1))
    pools = net.blocks[5].pool
    for i, pool in enumerate(pools):
        pools[i] = WindowAvgPool3d(pool.kernel_size)
    return _finish(SlowFast(net, alpha), state, net.blocks[6], num_classes)


@register("i3d_r50", default_spec=I3D_8X8, head="blocks.6.proj", publisher="pytorchvideo",
          description="I3D R50 8x8 (Carreira & Zisserman 2017), inflated 3D ResNet, pytorchvideo",
          weights={"I3D_8x8_R50": I3D_8X8}, urls={"I3D_8x8_R50": f"{ZOO}/I3D_8x8_R50.pyth"})
def i3d_r50(num_classes: int, pretrained: str | None = None, width: int = 64, depth: int = 50,
            dropout: float = 0.5) -> nn.Module:
    """``width``: the stem's channels (each stage's follow from it, as in ResNet)."""
    _int_arg("i3d_r50", "width", width, 4, 512)
    if depth not in RESNET_DEPTHS:
        raise ConfigError(f"i3d_r50: depth must be one of {RESNET_DEPTHS}")
    hf.require("pytorchvideo")
    with _quiet_import():
        from pytorchvideo.models.resnet import create_resnet

    state = _zoo_weights("i3d_r50", pretrained, width, depth, (64, 50))
    # pytorchvideo.models.hub.resnet.i3d_r50's arguments.
    net = create_resnet(model_depth=depth, model_num_class=400 if state is not None else num_classes,
                        dropout_rate=float(dropout), stem_dim_out=width, stem_conv_kernel_size=(5, 7, 7),
                        stage1_pool=nn.MaxPool3d,
                        stage_conv_a_kernel_size=((3, 1, 1), [(3, 1, 1), (1, 1, 1)], [(3, 1, 1), (1, 1, 1)],
                                                  [(1, 1, 1), (3, 1, 1)]))
    head = net.blocks[6]
    head.pool = WindowAvgPool3d(head.pool.kernel_size)
    return _finish(net, state, head, num_classes)


# -- transformers video classifiers --------------------------------------------------------------
class HFVideoClassifier(nn.Module):
    """A transformers video classifier on our layout: NCTHW float in (transformers wants NTCHW
    ``pixel_values``), logits [N, K] out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.hf = model

    def forward(self, clip_ncthw: torch.Tensor) -> torch.Tensor:
        return self.hf(pixel_values=clip_ncthw.transpose(1, 2)).logits


def _hf_classes(model_type: str, config: dict[str, Any], num_classes: int) -> tuple[Any, Any]:
    """The transformers model class and its config object, from a checked config dict (``hf.check_config``)."""
    hf.require("transformers")
    import transformers

    family = hf.hf_arch(model_type)
    cfg = getattr(transformers, family.config_class)(**config, num_labels=num_classes)
    cfg._attn_implementation = "eager"  # traces to OpenVINO as plain matmuls; same numbers as sdpa
    return getattr(transformers, family.model_class), cfg


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers notes, on every build, a ``loss_type`` its video configs carry, and draws a
    progress bar for each weight load; neither is the user's to act on. Its errors still show."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def hf_module(model_type: str, config: dict[str, Any], num_classes: int) -> nn.Module:
    """An untrained network from a checked config dict."""
    model_class, cfg = _hf_classes(model_type, config, num_classes)
    with _quiet_transformers():
        return HFVideoClassifier(model_class(cfg))


class HFNetwork(NamedTuple):
    module: nn.Module
    arch: str  # the family's registered architecture (videomae, timesformer, vivit)
    classes: list[str]
    spec: InputSpec
    arch_kwargs: dict[str, Any]  # {"config": ...}: what rebuilds it from an actionrec checkpoint


def load_hf(folder: Path) -> HFNetwork:
    """A transformers video classifier saved by ``save_pretrained``: its weights (float32, CPU), classes
    (``id2label``), input spec (config and processor) and, as ``arch_kwargs``, the config fields that
    rebuild it from an actionrec checkpoint (fields the family does not know are left out, here and there)."""
    config = hf.read_config(folder)
    model_type = config["model_type"]
    classes = hf.hf_classes(config)
    spec = hf.hf_spec(folder, config)
    try:
        kwargs = hf.check_config(model_type, {k: v for k, v in config.items() if k in hf.known_fields(model_type)})
    except ConfigError as e:
        raise ModelError(f"{folder}: {e}") from e
    model_class, cfg = _hf_classes(model_type, kwargs, len(classes))
    try:
        with _quiet_transformers():
            net = model_class.from_pretrained(str(folder), config=cfg, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the transformers model in {folder}: {e}") from e
    return HFNetwork(HFVideoClassifier(net.float()), model_type, classes, spec, {"config": kwargs})


def _hf_build(model_type: str) -> Any:
    def build(num_classes: int, config: dict[str, Any] | None = None, pretrained: str | None = None) -> nn.Module:
        if pretrained:
            raise ModelError(f"{model_type}: published weights are loaded by reference (hf:<hub id or folder>)")
        return hf_module(model_type, hf.check_config(model_type, config or {}), num_classes)

    build.__name__ = model_type
    return build


def _register_hf() -> None:
    base = {"videomae": (16, 224), "timesformer": (8, 224), "vivit": (32, 224)}  # the families' base configs
    names = {"videomae": "VideoMAE (Tong et al. 2022)", "timesformer": "TimeSformer (Bertasius et al. 2021)",
             "vivit": "ViViT (Arnab et al. 2021)"}
    for model_type, family in hf.FAMILIES.items():
        frames, size = base[model_type]
        spec = hf.processor_spec(family, {}, frames, size)
        register(model_type, default_spec=spec, head="hf.classifier", publisher="hf",
                 description=f"transformers {names[model_type]}; weights by hf:<hub id or folder>")(
            _hf_build(model_type))


_register_hf()
