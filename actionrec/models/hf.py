"""Transformers video classifiers by reference (``hf:<hub id or folder>``), offline only.

A folder made by ``save_pretrained`` is read as it is; a hub id is looked up in the local Hugging
Face cache (``local_files_only``), never downloaded (``actionrec models pull hf:<id>`` fetches it).
The input spec is the model's own: frames and size from its config, resize, crop and normalisation
from its processor file. This module is torch-free (pinning a reference must not load torch); the
networks themselves are in ``families``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionrec.data.spec import InputSpec
from actionrec.errors import CheckpointError, ConfigError, ModelError, WeightsNotFoundError

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class HFFamily:
    """One transformers video classifier family. ``sample_fps``: where its published clips put their
    frames in time (the config does not say; the papers do, at Kinetics' 30 fps)."""

    model_type: str
    model_class: str
    config_class: str
    sample_fps: float
    processor: dict[str, Any]  # the family's processor defaults, for what a folder's processor file leaves out


FAMILIES = {
    # VideoMAE (Tong et al. 2022): 16 frames, every 4th -> 7.5 fps.
    "videomae": HFFamily("videomae", "VideoMAEForVideoClassification", "VideoMAEConfig", 7.5,
                         {"image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD}),
    # TimeSformer (Bertasius et al. 2021): 8 frames, every 32nd -> 0.9375 fps.
    "timesformer": HFFamily("timesformer", "TimesformerForVideoClassification", "TimesformerConfig", 30 / 32,
                            {"image_mean": (0.45, 0.45, 0.45), "image_std": (0.225, 0.225, 0.225)}),
    # ViViT (Arnab et al. 2021): 32 frames, every 2nd -> 15 fps; its processor maps pixels to [-1, 1].
    "vivit": HFFamily("vivit", "VivitForVideoClassification", "VivitConfig", 15.0,
                      {"image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5), "rescale_factor": 1 / 127.5,
                       "offset": True}),
}

# Config fields that say nothing about the network's shape, or that come from elsewhere (the classes).
DROPPED_KEYS = {"id2label", "label2id", "num_labels", "_name_or_path", "architectures", "transformers_version",
                "dtype", "torch_dtype", "model_type", "auto_map", "_attn_implementation"}
# Bounds every published video transformer sits far inside; checked before anything is built.
SIZE_LIMITS = {
    "hidden_size": 8192, "intermediate_size": 65536, "num_hidden_layers": 96, "num_attention_heads": 256,
    "image_size": 1024, "patch_size": 1024, "num_frames": 512, "tubelet_size": 512, "num_channels": 16,
    "decoder_hidden_size": 8192, "decoder_intermediate_size": 65536, "decoder_num_hidden_layers": 96,
    "decoder_num_attention_heads": 256, "pooler_output_size": 8192,
}
MAX_TOKENS = 65536  # patches per clip: attention is quadratic in them


def hf_arch(model_type: object) -> HFFamily:
    if not isinstance(model_type, str) or model_type not in FAMILIES:
        raise ModelError(f"unsupported transformers model type {model_type!r}; supported: {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def check_config(model_type: str, config: object) -> dict[str, Any]:
    """A transformers config dict fit to build from: known fields only, plain values, sane sizes.
    Raises ``ConfigError`` before anything is allocated (a checkpoint's ``arch_kwargs`` reach here)."""
    hf_arch(model_type)
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ConfigError(f"{model_type} config must be a dict of fields, got {type(config).__name__}")
    known = known_fields(model_type)
    cfg = {k: v for k, v in config.items() if k not in DROPPED_KEYS}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{model_type} config has unknown fields: {', '.join(unknown[:5])}")
    for key, value in cfg.items():
        if not _plain(value):
            raise ConfigError(f"{model_type} config field {key} must be a plain value, got {str(value)[:80]!r}")
        limit = SIZE_LIMITS.get(key)
        if limit is not None:
            for n in value if isinstance(value, list) else [value]:
                if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= limit:
                    raise ConfigError(f"{model_type} config field {key} must be integers from 1 to {limit}, "
                                      f"got {value!r}")
    _check_geometry(model_type, cfg)
    return cfg


def require(package: str) -> None:
    """``ConfigError`` naming the extra that installs ``package`` when it is missing."""
    try:
        __import__(package)
    except ImportError as e:
        raise ConfigError(f"this architecture needs the {package} package: pip install 'actionrec[families]'") from e


def known_fields(model_type: str) -> set[str]:
    """The config fields a family's network is built from (its config class's, less ``DROPPED_KEYS``)."""
    require("transformers")
    import transformers

    return set(getattr(transformers, hf_arch(model_type).config_class)().to_dict()) - DROPPED_KEYS


def _plain(value: object) -> bool:
    if isinstance(value, list):
        return len(value) <= 8 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int) or (isinstance(value, str) and len(value) <= 200)


def _check_geometry(model_type: str, cfg: dict[str, Any]) -> None:
    """Heads divide the width, patches tile the frame, and a clip is not more tokens than attention can hold."""
    hidden, heads = cfg.get("hidden_size", 768), cfg.get("num_attention_heads", 12)
    if hidden % heads:
        raise ConfigError(f"{model_type} config: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    image, frames = cfg.get("image_size", 224), cfg.get("num_frames", 16)
    tubelet = cfg.get("tubelet_size", 2 if model_type == "videomae" else 1)
    t, p = (tubelet[0], tubelet[1]) if isinstance(tubelet, list) and len(tubelet) == 3 else (tubelet, None)
    p = cfg.get("patch_size", 16) if p is None else p
    if not all(isinstance(v, int) for v in (image, frames, t, p)) or image % p or frames % t:
        raise ConfigError(f"{model_type} config: patches ({t} x {p} x {p}) must tile the clip "
                          f"({frames} x {image} x {image})")
    if (frames // t) * (image // p) ** 2 > MAX_TOKENS:
        raise ConfigError(f"{model_type} config: a clip of {frames} x {image} x {image} is more than {MAX_TOKENS} "
                          "patches")


# -- references ------------------------------------------------------------------------------------
def hf_model_name(target: str) -> str:
    """The name an ``hf:`` model goes by: ``hf-<org>--<name>`` for a hub id, ``hf-<folder name>`` for a folder."""
    slug = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.-]", "-", target.replace("/", "--"))).strip(".-_")
    slug = slug or "model"
    return f"hf-{slug}"[:128]


def resolve_hub_id(repo_id: str) -> Path:
    """The cached snapshot folder of a hub id, never downloaded; ``WeightsNotFoundError`` naming the
    command that fetches it when it is not cached."""
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as e:  # noqa: BLE001 - not cached, a half-written cache, an offline error: all "not here"
        raise WeightsNotFoundError(
            f"{repo_id} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}); fetch it first with "
            f"`actionrec models pull hf:{repo_id}` (nothing is downloaded at run time)") from e


def hf_version(folder: Path, *, hub: bool) -> str:
    """A cached hub snapshot is named by its commit; a local folder by a hash of its config, processor
    and weight files, so a changed folder is a new version (new tags, a new conversion)."""
    if hub and re.fullmatch(r"[0-9a-f]{40}", folder.name):
        return folder.name[:12]
    digest = hashlib.sha256()
    files = [folder / "config.json", *_processor_files(folder), *_weight_files(folder)]
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def _processor_files(folder: Path) -> list[Path]:
    return [p for p in (folder / "preprocessor_config.json", folder / "video_preprocessor_config.json") if p.is_file()]


def _weight_files(folder: Path) -> list[Path]:
    files = sorted([*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")])
    if not files:
        raise CheckpointError(f"{folder} holds no weights (model.safetensors or pytorch_model.bin)")
    return files


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder} is not a transformers model folder (no readable config.json): {e}") from e
    if not isinstance(config, dict):
        raise ModelError(f"{path} is not a config")
    hf_arch(config.get("model_type"))
    return config


def hf_classes(config: dict[str, Any]) -> list[str]:
    """Class names from ``id2label``, in index order."""
    labels = config.get("id2label") or {}
    try:
        classes = [str(labels[k]).strip() for k in sorted(labels, key=int)]
    except (TypeError, ValueError) as e:
        raise ModelError(f"id2label must map indices to names: {e}") from e
    if not classes or sorted(int(k) for k in labels) != list(range(len(classes))):
        raise ModelError("id2label must name every class 0..K-1")
    if len(set(classes)) != len(classes) or not all(classes):
        raise ModelError("id2label names a class twice or not at all")
    return classes


def hf_spec(folder: Path, config: dict[str, Any]) -> InputSpec:
    """The input spec of a transformers video classifier: frames and size from its config (what its
    position embeddings fix); the short side and normalisation from its processor file. Without a
    processor file: the short side is the crop and the family processor's default mean and std.

    The processor scales pixels by ``rescale_factor`` (minus 1 with ViViT's ``offset``), then normalises;
    that is one affine map, written here as a mean and std over pixels / 255."""
    family = hf_arch(config.get("model_type"))
    frames, crop = config.get("num_frames", 16), config.get("image_size", 224)
    if not isinstance(frames, int) or not isinstance(crop, int):
        raise ModelError(f"{folder}: num_frames and image_size must be integers (non-square frames are not supported)")
    processor: dict[str, Any] = {}
    files = _processor_files(folder)
    if files:
        try:
            processor = json.loads(files[0].read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot read {files[0]}: {e}") from e
        if not isinstance(processor, dict):
            raise ModelError(f"{files[0]} is not a processor config")
    source = "config.json and " + (files[0].name if files else f"the {family.model_type} processor's defaults")
    return processor_spec(family, processor, frames, crop, source)


def processor_spec(family: HFFamily, processor: dict[str, Any], frames: int, crop: int, source: str = "") -> InputSpec:
    """What a processor does to pixels, as our spec (over pixels / 255). Fields it leaves out are the
    family processor's defaults; a missing short side is the crop."""
    p = {**family.processor, **processor}
    size = p.get("size") or {}
    short = size.get("shortest_edge") or min(size.get("height", crop), size.get("width", crop))
    normalize = p.get("do_normalize", True)
    mean = _rgb(p.get("image_mean", IMAGENET_MEAN)) if normalize else (0.0, 0.0, 0.0)
    std = _rgb(p.get("image_std", IMAGENET_STD)) if normalize else (1.0, 1.0, 1.0)
    scale = 255 * float(p.get("rescale_factor", 1 / 255)) if p.get("do_rescale", True) else 255.0
    offset = 1.0 if p.get("offset", False) else 0.0
    try:
        return InputSpec(
            frames_per_clip=frames, sampling="fps", sample_fps=family.sample_fps, short_side=max(int(short), crop),
            crop_size=crop, mean=tuple((offset + m) / scale for m in mean), std=tuple(s / scale for s in std),
            extra={"source": source} if source else {})
    except (ConfigError, TypeError, ValueError) as e:
        raise ModelError(f"the {family.model_type} processor settings make no input spec: {e}") from e


def _rgb(value: Any) -> tuple[float, float, float]:
    values = [value] * 3 if isinstance(value, int | float) else list(value)
    if len(values) != 3:
        raise ModelError(f"expected one value per RGB channel, got {value!r}")
    return (float(values[0]), float(values[1]), float(values[2]))
