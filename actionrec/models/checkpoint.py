"""Checkpoints: one file that rebuilds its model, loaded without unpickling code.

The file is a plain dict of tensors, strings, numbers, lists and dicts, so
``torch.load(weights_only=True)`` can read it; anything carrying pickled objects is refused.
``card.json`` beside it holds the same metadata for people.
"""

from __future__ import annotations

import json
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
from actionrec.models.card import card_path, checkpoint_name, file_version

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
    version: str = "unversioned"
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


def load_checkpoint(path: str | os.PathLike, *, name: str | None = None) -> LoadedModel:
    """Rebuild a model from a checkpoint file; pickled code is refused, never executed."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol of a file we refuse anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {path}: it holds pickled Python objects, not just weights "
            "(only weights_only checkpoints are accepted)"
        ) from e
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    return _from_payload(payload, path, name=name, version=file_version(path))


def _from_payload(payload: Any, path: Path, *, name: str | None, version: str) -> LoadedModel:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an actionrec checkpoint (no 'format: {FORMAT}' field)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer actionrec (format {payload['format_version']})")
    try:
        arch = str(payload["arch"])
        classes = [str(c) for c in payload["classes"]]
        spec = InputSpec.from_dict(payload["input_spec"])
        kwargs = dict(payload.get("arch_kwargs") or {})
        state = payload["state_dict"]
    except KeyError as e:
        raise CheckpointError(f"{path} lacks the field {e.args[0]!r}") from e
    except (ConfigError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path} has a malformed field: {e}") from e
    model = build_model(arch, classes, spec=spec, **kwargs)
    try:
        model.module.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit architecture {arch!r}: {e}") from e
    model.module.eval()
    model.name = name or checkpoint_name(path)
    model.version = version
    model.provenance = dict(payload.get("provenance") or {})
    return model
