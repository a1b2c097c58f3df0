"""Model references, as accepted wherever a model is named.

- a path or URI to a checkpoint file (``model.pt``, ``file://...``, ``s3://...``);
- a name in a lake's registry: ``<model_name>`` (its champion) or ``<model_name>@<version>``;
- ``torchvision:<arch>[:<weights>]``, e.g. ``torchvision:r2plus1d_18:KINETICS400_V1``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from actionrec.errors import CheckpointError, ModelError
from actionrec.models.checkpoint import LoadedModel, build_model, load_checkpoint, name_from_card
from actionrec.sources import is_s3, local_path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def validate_model_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise ModelError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def load_model(ref: str, *, lake: str | os.PathLike | None = None) -> LoadedModel:
    """Resolve any model reference to a loaded model (weights on CPU, in eval mode)."""
    ref = str(ref).strip()
    if not ref:
        raise ModelError("empty model reference")
    if ref.startswith("torchvision:"):
        return _torchvision(ref)
    if is_s3(ref):
        return _s3_checkpoint(ref)
    if ref.startswith("file://") or local_path(ref).suffix in {".pt", ".pth"} or local_path(ref).exists():
        path = local_path(ref)
        if path.is_dir() and (path / "model.pt").exists():
            path = path / "model.pt"
        return load_checkpoint(path, name=name_from_card(path))
    name, _, version = ref.partition("@")
    validate_model_name(name)
    if lake is None:
        raise ModelError(f"model {ref!r} is neither a checkpoint file nor torchvision:<arch>; "
                         "to use a registered model name, give the lake (--lake)")
    from actionrec.lake import Lake

    return Lake(str(lake)).load_model(name, version or None)


def _torchvision(ref: str) -> LoadedModel:
    from actionrec.models.architectures import torchvision_categories

    parts = ref.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ModelError(f"expected torchvision:<arch>[:<weights>], got {ref!r}")
    arch = parts[1]
    weights = parts[2] if len(parts) == 3 and parts[2] else "KINETICS400_V1"
    classes = torchvision_categories(arch, weights)
    model = build_model(arch, classes, pretrained=weights)
    model.module.eval()
    model.name, model.version = f"torchvision-{arch}", weights
    model.provenance = {"source": ref}
    return model


def _s3_checkpoint(uri: str) -> LoadedModel:
    from actionrec.s3 import download_to

    with tempfile.TemporaryDirectory(prefix="actionrec-model-") as tmp:
        target = Path(tmp) / "model.pt"
        try:
            download_to(uri, target)
        except Exception as e:
            raise CheckpointError(f"cannot fetch checkpoint {uri}: {e}") from e
        return load_checkpoint(target, name=Path(uri).parent.parent.name or None)
