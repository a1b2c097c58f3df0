"""The conversion cache: a model converted for an engine is kept on disk, so a nightly run converts
once and every later run (and every worker) loads the converted file directly, without torch.

An entry is a folder ``<root>/<engine>/<name>@<version>/<engine version>-<weights precision>/``
holding the converted model and ``meta.json`` (classes, input spec, identity). The model version
is the checkpoint's content hash, so it fixes the input shape too (``meta.json`` records it). An
entry is written in a temporary folder beside it and renamed into place: a crash mid-write leaves
a temporary folder that is never read (and is swept by the next conversion), never a broken entry.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionrec.data.spec import InputSpec
from actionrec.errors import ConfigError

META = "meta.json"
_TEMP_PREFIX = ".partial-"
_STALE_TEMP_S = 3600.0


def cache_root() -> Path:
    """``$ACTIONREC_CACHE_DIR``, else ``$XDG_CACHE_HOME/actionrec``, else ``~/.cache/actionrec``."""
    if os.environ.get("ACTIONREC_CACHE_DIR"):
        return Path(os.environ["ACTIONREC_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "actionrec"


@dataclass(frozen=True)
class ModelMeta:
    """What a converted model carries besides its graph: the same fields a loaded checkpoint has."""

    name: str
    version: str
    arch: str
    classes: list[str]
    spec: InputSpec

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch, "classes": list(self.classes),
                "input_spec": self.spec.to_dict(),
                "input": {"layout": "NTHWC", "dtype": "uint8",
                          "shape": [-1, *self.spec.clip_shape]},
                "output": {"layout": "NK", "dtype": "float32", "what": "class probabilities (softmax)"}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        return cls(str(d["name"]), str(d["version"]), str(d["arch"]), [str(c) for c in d["classes"]],
                   InputSpec.from_dict(d["input_spec"]))

    @classmethod
    def of(cls, model: Any) -> ModelMeta:
        """The identity of a loaded model (anything with name, version, arch, classes, spec)."""
        return cls(model.name, model.version, model.arch, list(model.classes), model.spec)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in text)


def entry_dir(engine: str, name: str, version: str, variant: str) -> Path:
    return cache_root() / engine / _safe(f"{name}@{version}") / _safe(variant)


def lookup(engine: str, name: str, version: str, variant: str) -> tuple[Path, ModelMeta] | None:
    """A complete cache entry and its meta, or None (an entry whose meta cannot be read is a miss)."""
    folder = entry_dir(engine, name, version, variant)
    try:
        meta = ModelMeta.from_dict(json.loads((folder / META).read_text()))
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return None
    if meta.version != version:
        return None
    return folder, meta


@contextmanager
def publishing(engine: str, meta: ModelMeta, variant: str, extra: dict[str, Any] | None = None) -> Iterator[Path]:
    """A temporary folder to write an entry's files into; on success ``meta.json`` (with ``extra``)
    is added and the folder is renamed into place (if another process published the same entry
    first, its copy stays)."""
    final = entry_dir(engine, meta.name, meta.version, variant)
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep(final.parent)
    tmp = final.parent / f"{_TEMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        (tmp / META).write_text(json.dumps({**meta.to_dict(), **(extra or {})}, indent=2))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        try:
            os.rename(tmp, final)
        except OSError:
            if lookup(engine, meta.name, meta.version, variant) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sweep(folder: Path) -> None:
    """Remove temporary folders left by crashed conversions (older than an hour: not in progress)."""
    now = time.time()
    for p in folder.glob(f"{_TEMP_PREFIX}*"):
        with suppress(OSError):
            if now - p.stat().st_mtime > _STALE_TEMP_S:
                shutil.rmtree(p, ignore_errors=True)
