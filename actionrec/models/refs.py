"""Model references: one grammar, one parser, used by every command and the Python API.

- ``torchvision:<arch>[:<weights>]``, e.g. ``torchvision:r2plus1d_18:KINETICS400_V1``;
- a checkpoint in S3: ``s3://bucket/key.pt``;
- a checkpoint file: ``file://...``, a path with a folder part or a ``.pt``/``.pth`` suffix, or an
  existing folder that holds ``model.pt`` (``./dir`` and ``dir/model.pt`` are the same model);
- otherwise a name in a lake's registry: ``<model_name>`` (its champion) or ``<model_name>@<version>``.

``parse_model_ref`` reads the text; ``pin_model`` fixes it to one (name, version) without loading
weights (a tag run pins once, so every shard uses the same model even if the champion moves);
``load_model`` loads it (and is the only part that needs torch).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from actionrec.errors import ConfigError, ModelError, VideoError
from actionrec.io.uris import is_s3, local_path, split_s3
from actionrec.lake.lake import Lake
from actionrec.models.card import card_path, checkpoint_name, file_version
from actionrec.names import check_name

if TYPE_CHECKING:
    from actionrec.models.checkpoint import LoadedModel

RefKind = Literal["torchvision", "s3", "file", "registry"]
DEFAULT_WEIGHTS = "KINETICS400_V1"
CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference. ``location``: the file path or S3 URI; ``name``/``version``: the
    registry entry, or the torchvision architecture and weights."""

    text: str
    kind: RefKind
    location: str = ""
    name: str = ""
    version: str | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PinnedModel:
    """A model fixed to one version for a whole run. ``ref`` reloads exactly this model."""

    ref: str
    name: str
    version: str


def _looks_like_path(text: str) -> bool:
    path = local_path(text)
    if text.startswith(("file://", ".", "~")) or "/" in text or os.sep in text:
        return True
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        return True
    return path.is_file() or (path / "model.pt").is_file()


def parse_model_ref(text: str | os.PathLike) -> ModelRef:
    """Read a model reference (see the module docstring); ``ConfigError`` when it cannot be one."""
    text = os.fspath(text).strip()
    if not text:
        raise ConfigError("empty model reference")
    if text.startswith("torchvision:"):
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            raise ConfigError(f"expected torchvision:<arch>[:<weights>], got {text!r}")
        weights = parts[2] if len(parts) == 3 and parts[2] else DEFAULT_WEIGHTS
        return ModelRef(text, "torchvision", name=parts[1], version=weights)
    if is_s3(text):
        split_s3(text)  # validates bucket and key
        return ModelRef(text, "s3", location=text)
    if _looks_like_path(text):
        path = local_path(text).expanduser()
        if path.is_dir():
            path = path / "model.pt"
        return ModelRef(text, "file", location=str(path.resolve()))
    name, at, version = text.partition("@")
    check_name("model name", name)
    if at:
        check_name("model version", version)
    return ModelRef(text, "registry", name=name, version=version or None)


def pin_model(ref: str | ModelRef, lake: str | os.PathLike | None = None) -> PinnedModel:
    """Fix a reference to (name, version) without loading weights; a registry name without a
    version becomes its champion at this moment."""
    r = ref if isinstance(ref, ModelRef) else parse_model_ref(ref)
    if r.kind == "torchvision":
        return PinnedModel(r.text, f"torchvision-{r.name}", r.version or DEFAULT_WEIGHTS)
    if r.kind == "file":
        path = Path(r.location)
        if not path.is_file():
            raise ModelError(f"checkpoint not found: {r.text}")
        return PinnedModel(str(path), checkpoint_name(path), file_version(path))
    if r.kind == "s3":
        with _s3_checkpoint(r.location) as path:
            return PinnedModel(r.location, checkpoint_name(path), file_version(path))
    lk = Lake(lake)
    version = r.version or lk.champion(r.name)
    if version is None:
        raise ModelError(f"model {r.name!r} has no champion in lake {lk.root}; train one (`actionrec retrain`) "
                         "or pass --model")
    if not lk.has_model(r.name, version):
        raise ModelError(f"model {r.name}@{version} is not in lake {lk.root}")
    return PinnedModel(f"{r.name}@{version}", r.name, version)


def load_model(ref: str | ModelRef | PinnedModel, *, lake: str | os.PathLike | None = None) -> LoadedModel:
    """Resolve any model reference to a loaded model (weights on CPU, in eval mode). A pinned model
    must still be the version it was pinned to (a checkpoint file replaced mid-run is refused)."""
    from actionrec.models.checkpoint import load_checkpoint

    pinned = ref if isinstance(ref, PinnedModel) else None
    r = parse_model_ref(pinned.ref if pinned else ref) if not isinstance(ref, ModelRef) else ref
    if r.kind == "torchvision":
        model = _torchvision(r)
    elif r.kind == "file":
        model = load_checkpoint(r.location)
    elif r.kind == "s3":
        with _s3_checkpoint(r.location) as path:
            model = load_checkpoint(path)
    else:
        lk = Lake(lake)
        version = r.version or lk.champion(r.name)
        if version is None:
            raise ModelError(f"model {r.name!r} has no champion in lake {lk.root} (train one with "
                             "`actionrec retrain`, or give --lake)")
        with lk.model_file(r.name, version) as path:
            model = load_checkpoint(path, name=r.name)
    if pinned is not None:
        if model.version != pinned.version:
            raise ModelError(f"{pinned.ref} changed since the run started (version {model.version}, "
                             f"pinned {pinned.version})")
        model.name = pinned.name
    return model


def _torchvision(r: ModelRef) -> LoadedModel:
    from actionrec.models.architectures import torchvision_categories
    from actionrec.models.checkpoint import build_model

    weights = r.version or DEFAULT_WEIGHTS
    classes = torchvision_categories(r.name, weights)
    model = build_model(r.name, classes, pretrained=weights)
    model.module.eval()
    model.name, model.version = f"torchvision-{r.name}", weights
    model.provenance = {"source": r.text}
    return model


@contextmanager
def _s3_checkpoint(uri: str) -> Iterator[Path]:
    """The checkpoint at an S3 URI, with its card when there is one beside it, in a temporary folder
    named like its S3 folder (which names a ``model.pt`` that has no card, see ``checkpoint_name``)."""
    from actionrec.io.s3 import download_to, get_bytes

    bucket, key = split_s3(uri)
    folder, _, name = key.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="actionrec-model-") as tmp:
        target = Path(tmp) / (Path(folder).name or "model") / name
        target.parent.mkdir()
        try:
            download_to(uri, target)
        except VideoError as e:
            raise ModelError(f"cannot fetch checkpoint {uri}: {e.reason}") from e
        card = card_path(target)
        data = get_bytes(bucket, f"{folder}/{card.name}" if folder else card.name)
        if data is not None:
            card.write_bytes(data)
        yield target
