"""Checkpoints: one file that rebuilds its model, loaded without unpickling code.

The file is a plain dict of tensors, strings, numbers, lists and dicts, so
``torch.load(weights_only=True)`` can read it; anything carrying pickled objects is refused.
``card.json`` beside it holds the same metadata for people.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import pickle
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actionrec.data.spec import InputSpec
from actionrec.errors import CheckpointError, ConfigError, ModelError
from actionrec.io import atomic
from actionrec.models.architectures import get_architecture
from actionrec.models.card import UNVERSIONED, card_path, checkpoint_name, file_version

FORMAT = "actionrec-checkpoint"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A network with what it needs to be used: classes, input spec, identity."""

    module: nn.Module
    arch: str
    classes: list[str]
    spec: InputSpec
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    version: str = UNVERSIONED
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def build_model(
    arch: str,
    classes: list[str],
    *,
    spec: InputSpec | None = None,
    pretrained: str | None = None,
    **arch_kwargs: Any,
) -> LoadedModel:
    """A fresh (or pretrained, from the local cache) network for ``classes``; without ``spec`` it
    gets the input spec its weights were published with (or the architecture's default)."""
    if not classes:
        raise ModelError("a model needs at least one class")
    entry = get_architecture(arch)
    module = entry.build(len(classes), pretrained=pretrained, **arch_kwargs)
    return LoadedModel(module, arch, list(classes), spec or entry.spec_for(pretrained), dict(arch_kwargs), name=arch)


def checkpoint_payload(model: LoadedModel, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    state = {k: v.detach().cpu().contiguous() for k, v in model.module.state_dict().items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "arch_kwargs": dict(model.arch_kwargs),
        "classes": list(model.classes),
        "input_spec": model.spec.to_dict(),
        "provenance": dict(provenance if provenance is not None else model.provenance),
        "state_dict": state,
    }


def card(model: LoadedModel, version: str, provenance: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": model.name,
        "version": version,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "arch": model.arch,
        "arch_kwargs": model.arch_kwargs,
        "num_classes": model.num_classes,
        "classes": model.classes,
        "input_spec": model.spec.to_dict(),
        "provenance": provenance,
    }


def save_checkpoint(
    model: LoadedModel, path: str | os.PathLike, provenance: dict[str, Any] | None = None
) -> str:
    """Write ``path`` (whole or not at all) and ``card.json`` beside it; return the version."""
    path = Path(path)
    prov = dict(provenance if provenance is not None else model.provenance)
    with atomic.atomic_path(path) as tmp:
        torch.save(checkpoint_payload(model, prov), tmp)
    version = file_version(path)
    model.version, model.provenance = version, prov
    if prov.get("model_name"):
        model.name = str(prov["model_name"])
    atomic.write_text(card_path(path), json.dumps(card(model, version, prov), indent=2, default=str))
    return version


# Bounds that every real video classifier sits far inside; a checkpoint outside them is refused
# before anything is allocated for it.
MAX_PARAMETERS = 2_000_000_000  # 8 GB of fp32 weights
MAX_CLASSES = 100_000
MAX_CLIP_ELEMENTS = 64 * 2**20  # frames x crop x crop x 3 of one clip (S3D's published 128 x 224 x 224: 19 M)
SPEC_LIMITS = {"frames_per_clip": 1024, "crop_size": 2048, "crop_width": 4096, "short_side": 4096, "frame_stride": 1000, "sample_fps": 1000}
PAYLOAD_KEYS = {"format", "format_version", "arch", "arch_kwargs", "classes", "input_spec", "provenance", "state_dict"}


def load_checkpoint(path: str | os.PathLike, *, name: str | None = None) -> LoadedModel:
    """Rebuild a model from a checkpoint file. Everything is checked before anything is allocated
    for it: the container (a torch zip, nothing compressed), then the metadata (types, ranges, the
    input size it implies), then the parameter count and every tensor's shape against the
    architecture built on the meta device. Pickled code is refused, never executed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    _check_container(path)
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol of a file we refuse anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            # mmap: the tensors stay on disk until they are copied into a model that passed the checks
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {path}: it holds pickled Python objects, not just weights "
            "(only weights_only checkpoints are accepted)"
        ) from e
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    return _from_payload(payload, path, name=name, version=file_version(path))


def _check_container(path: Path) -> None:
    """A torch zip whose entries are stored as they are: a compressed entry (which torch.save never
    writes) could expand without bound when read."""
    import zipfile

    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"refused to load {path}: it is not a torch zip checkpoint (a plain pickle or a "
                              "legacy file); only weights-only checkpoints written by torch.save are accepted")
    try:
        with zipfile.ZipFile(path) as zf:
            entries = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    packed = [i.filename for i in entries if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise CheckpointError(f"refused to load {path}: compressed entries ({', '.join(packed[:3])}) could expand "
                              "without bound; torch.save writes none")
    if sum(i.file_size for i in entries) > path.stat().st_size:
        raise CheckpointError(f"refused to load {path}: its entries claim more bytes than the file holds")


@dataclass(frozen=True)
class _Meta:
    arch: str
    classes: list[str]
    spec: InputSpec
    kwargs: dict[str, Any]


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int | str)


def _plain(value: Any, depth: int = 0) -> bool:
    """Scalars, or lists and string-keyed dicts of them (a transformers config), at most three levels
    deep and 1,000 entries wide; what they mean is the architecture's to check (before it builds)."""
    if _scalar(value):
        return True
    if depth >= 3 or not isinstance(value, list | dict) or len(value) > 1000:
        return False
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())


def _check_metadata(payload: Any, path: Path) -> _Meta:
    """Types and ranges of every field, before any of them decides an allocation."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an actionrec checkpoint (no 'format: {FORMAT}' field)")
    unknown = sorted(str(k) for k in set(payload) - PAYLOAD_KEYS)
    if unknown:
        raise CheckpointError(f"{path} has unknown fields: {', '.join(unknown)}")
    missing = sorted({"arch", "classes", "input_spec", "state_dict"} - set(payload))
    if missing:
        raise CheckpointError(f"{path} lacks the field {missing[0]!r}")
    version = payload.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer actionrec (format {version})")
    arch = payload["arch"]
    if not isinstance(arch, str):
        raise CheckpointError(f"{path}: arch must be a name, got {type(arch).__name__}")
    try:
        entry = get_architecture(arch)
    except ModelError as e:
        raise CheckpointError(f"{path}: {e}") from e
    classes = payload["classes"]
    if not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES:
        raise CheckpointError(f"{path}: classes must be a list of 1 to {MAX_CLASSES} names")
    if not all(isinstance(c, str) and c.strip() == c and 0 < len(c) <= 200 for c in classes):
        raise CheckpointError(f"{path}: every class name must be a non-empty string without outer spaces")
    if len(set(classes)) != len(classes):
        twice = sorted({c for c in classes if classes.count(c) > 1})[:5]
        raise CheckpointError(f"{path}: class names appear twice: {', '.join(twice)}")
    kwargs = payload.get("arch_kwargs") or {}
    allowed = set(inspect.signature(entry.build).parameters) - {"num_classes", "pretrained"}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) and k in allowed and _plain(v)
                                               for k, v in kwargs.items()):
        raise CheckpointError(f"{path}: arch_kwargs must map {arch}'s arguments ({', '.join(sorted(allowed))}) "
                              f"to plain values, got {kwargs!r}"[:300])
    raw = payload["input_spec"]
    if not isinstance(raw, dict) or not set(raw) <= set(InputSpec.__dataclass_fields__):
        raise CheckpointError(f"{path}: input_spec must be a dict of {sorted(InputSpec.__dataclass_fields__)}")
    for key, limit in SPEC_LIMITS.items():
        value = raw.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                                  or not math.isfinite(value) or value > limit):
            raise CheckpointError(f"{path}: input_spec.{key} must be a number up to {limit}, got {value!r}")
    try:
        spec = InputSpec.from_dict(raw)
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: malformed input_spec: {e}") from e
    if math.prod(spec.clip_shape) > MAX_CLIP_ELEMENTS:
        raise CheckpointError(f"{path}: a clip of {spec.frames_per_clip} x {spec.crop_hw[0]} x {spec.crop_hw[1]} "
                              f"is larger than any model reads ({MAX_CLIP_ELEMENTS} values)")
    if not isinstance(payload.get("provenance", {}), dict):
        raise CheckpointError(f"{path}: provenance must be a dict")
    if not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path}: state_dict must be a dict of tensors")
    return _Meta(arch, list(classes), spec, dict(kwargs))


def _check_weights(meta: _Meta, state: dict[str, Any], path: Path) -> None:
    """The architecture, built on the meta device (no memory), must be of a sane size and have
    exactly the tensors the file holds, shape for shape."""
    try:
        with torch.device("meta"):
            skeleton = get_architecture(meta.arch).build(len(meta.classes), **meta.kwargs)
    except Exception as e:  # noqa: BLE001 - whatever the arguments break is this file's fault
        raise CheckpointError(f"{path}: {meta.arch} cannot be built with {meta.kwargs}: {e}") from e
    count = sum(p.numel() for p in skeleton.parameters())
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{path}: its arguments make {meta.arch} a {count:,}-parameter network "
                              f"(more than {MAX_PARAMETERS:,})")
    expected = skeleton.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: weights do not fit architecture {meta.arch!r} (missing: "
                              f"{', '.join(missing[:3]) or '-'}; unexpected: {', '.join(map(str, extra[:3])) or '-'})")
    for key, want in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or got.shape != want.shape or got.dtype != want.dtype:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CheckpointError(f"{path}: tensor {key} is {shape}, {meta.arch} needs {tuple(want.shape)} "
                                  f"{want.dtype}")


def _from_payload(payload: Any, path: Path, *, name: str | None, version: str) -> LoadedModel:
    meta = _check_metadata(payload, path)
    state = payload["state_dict"]
    _check_weights(meta, state, path)
    model = build_model(meta.arch, meta.classes, spec=meta.spec, **meta.kwargs)
    model.module.load_state_dict(state)
    model.module.eval()
    model.name = name or checkpoint_name(path)
    model.version = version
    model.provenance = dict(payload.get("provenance") or {})
    return model
