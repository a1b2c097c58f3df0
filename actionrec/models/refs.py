"""Model references: one grammar, one parser, used by every command and the Python API.

- ``torchvision:<arch>[:<weights>]``, e.g. ``torchvision:r2plus1d_18:KINETICS400_V1``, and
  ``pytorchvideo:<arch>[:<weights>]``, e.g. ``pytorchvideo:slowfast_r50`` (its zoo's weights): a registered
  architecture with weights published there (without ``<weights>``: ``KINETICS400_V1`` for torchvision,
  the architecture's only published set for pytorchvideo);
- ``hf:<hub id or folder>``: a transformers video classifier, from a folder made by ``save_pretrained``
  (a path that starts with ``/``, ``.``, ``~`` or ``file://``, or an existing folder), else a hub id
  (``org/name``) read from the local Hugging Face cache;
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

RefKind = Literal["torchvision", "pytorchvideo", "hf", "s3", "file", "registry"]
PUBLISHERS = ("torchvision", "pytorchvideo")  # prefixes that name a registered architecture's published weights
DEFAULT_WEIGHTS = "KINETICS400_V1"
CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference. ``location``: the file path, S3 URI or transformers folder;
    ``name``/``version``: the registry entry, the published architecture and weights, or the hub id."""

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
    prefix = text.partition(":")[0]
    if prefix in PUBLISHERS:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            raise ConfigError(f"expected {prefix}:<arch>[:<weights>], got {text!r}")
        weights = parts[2] if len(parts) == 3 and parts[2] else None
        return ModelRef(text, prefix, name=parts[1],  # type: ignore[arg-type]
                        version=weights or (DEFAULT_WEIGHTS if prefix == "torchvision" else None))
    if prefix == "hf":
        return _parse_hf(text)
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


def _parse_hf(text: str) -> ModelRef:
    from actionrec.models.hf import HUB_ID

    target = text[3:].strip()
    if not target:
        raise ConfigError("expected hf:<hub id or folder>, got 'hf:'")
    path = local_path(target).expanduser()
    if target.startswith(("file://", ".", "~", "/", os.sep)) or path.is_dir():
        path = path.resolve()
        return ModelRef(text, "hf", location=str(path), name=path.name)
    if not HUB_ID.match(target) or ".." in target:
        raise ConfigError(f"expected hf:<hub id (org/name)> or hf:<folder>, got {text!r}")
    return ModelRef(text, "hf", name=target)


def pin_model(ref: str | ModelRef, lake: str | os.PathLike | None = None) -> PinnedModel:
    """Fix a reference to (name, version) without loading weights; a registry name without a
    version becomes its champion at this moment."""
    r = ref if isinstance(ref, ModelRef) else parse_model_ref(ref)
    if r.kind == "torchvision":
        return PinnedModel(r.text, f"torchvision-{r.name}", r.version or DEFAULT_WEIGHTS)
    if r.kind == "pytorchvideo":
        weights = r.version or _default_weights(r.name)
        return PinnedModel(f"pytorchvideo:{r.name}:{weights}", f"pytorchvideo-{r.name}", weights)
    if r.kind == "hf":
        from actionrec.models.hf import hf_model_name

        _, version = _hf_folder(r)
        return PinnedModel(f"hf:{r.location}" if r.location else r.text, hf_model_name(r.name), version)
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
    if r.kind in PUBLISHERS:
        model = _published(r)
    elif r.kind == "hf":
        model = _hf(r)
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


def _default_weights(arch: str) -> str:
    from actionrec.models.architectures import get_architecture

    entry = get_architecture(arch)
    if not entry.pretrained:
        raise ModelError(f"{arch} has no pretrained weights")
    return entry.pretrained[0]


def _published(r: ModelRef) -> LoadedModel:
    """A registered architecture with published weights (from the local cache), named by who publishes them."""
    from actionrec.models.architectures import get_architecture, published_categories
    from actionrec.models.checkpoint import build_model

    entry = get_architecture(r.name)
    if entry.pretrained and entry.publisher != r.kind:
        raise ModelError(f"{r.name}'s weights are published by {entry.publisher}: use {entry.publisher}:{r.name}")
    weights = r.version or _default_weights(r.name)
    classes = published_categories(r.name, weights)
    model = build_model(r.name, classes, pretrained=weights)
    model.module.eval()
    model.name, model.version = f"{r.kind}-{r.name}", weights
    model.provenance = {"source": r.text}
    return model


def _hf_folder(r: ModelRef) -> tuple[Path, str]:
    """The transformers folder of an ``hf:`` reference (a hub id from the local cache only) and its version."""
    from actionrec.models.hf import hf_version, resolve_hub_id

    if r.location:
        folder = Path(r.location)
        if not (folder / "config.json").is_file():
            raise ModelError(f"{r.text}: {folder} is not a transformers model folder (no config.json)")
        return folder, hf_version(folder, hub=False)
    folder = resolve_hub_id(r.name)
    return folder, hf_version(folder, hub=True)


def _hf(r: ModelRef) -> LoadedModel:
    """A transformers video classifier with its own classes and input spec, weights on CPU."""
    from actionrec.models.checkpoint import LoadedModel
    from actionrec.models.families import load_hf
    from actionrec.models.hf import hf_model_name

    folder, version = _hf_folder(r)
    net = load_hf(folder)
    net.module.eval()
    return LoadedModel(net.module, net.arch, net.classes, net.spec, net.arch_kwargs, name=hf_model_name(r.name),
                       version=version, provenance={"source": r.text})


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
