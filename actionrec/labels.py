"""Label tables: ``video_uri, label`` and an optional ``split`` (train | val | test).

Relative URIs are resolved against the table's own folder, so a dataset folder can move. Without
a ``split`` column the split is a stable hash of the URI, so a video never changes side as the
table grows. An ``augment.json`` beside the table declares what a mirror or a time reversal does
to each label (see ``actionrec.transforms.LabelAwareAugment``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionrec.errors import ConfigError
from actionrec.sources import is_s3, local_path, normalize_uri

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabeledVideo:
    uri: str
    label: str
    split: str


@dataclass(frozen=True)
class LabelTable:
    rows: tuple[LabeledVideo, ...]
    classes: tuple[str, ...]
    source: str
    sha256: str
    augment: dict[str, Any] | None = None

    def split(self, name: str) -> list[LabeledVideo]:
        return [r for r in self.rows if r.split == name]

    def class_id(self, label: str) -> int:
        return self.classes.index(label)


def hash_split(uri: str, val: float = 0.15, test: float = 0.15) -> str:
    """Stable split from the URI alone (sha256), independent of the rest of the table."""
    u = int(hashlib.sha256(uri.encode()).hexdigest()[:8], 16) / 0x100000000
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


def _resolve(uri: str, base: Path | str | None) -> str:
    if is_s3(uri) or uri.startswith("file://"):
        return normalize_uri(uri)
    if isinstance(base, str):  # a table in S3: relative URIs are keys beside it
        return f"{base}/{uri.removeprefix('./')}" if not uri.startswith("/") else normalize_uri(uri)
    path = Path(uri)
    if not path.is_absolute() and base is not None:
        path = base / path
    return normalize_uri(path)


def _read_rows(path: str) -> tuple[list[dict[str, str]], bytes]:
    if is_s3(path):
        import tempfile

        from actionrec.s3 import download_to

        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / Path(path).name
            download_to(path, target)
            return _read_rows(str(target))
    p = local_path(path)
    if not p.exists():
        raise ConfigError(f"labels: file not found: {path}")
    data = p.read_bytes()
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(p)
        return [{k: (None if v is None else str(v)) for k, v in row.items()} for row in table.to_pylist()], data
    text = data.decode("utf-8-sig")
    return list(csv.DictReader(text.splitlines())), data


def read_labels(path: str | os.PathLike, *, val: float = 0.15, test: float = 0.15) -> LabelTable:
    """Read and validate a label table; classes are sorted for a stable class-id order."""
    path = os.fspath(path)
    rows, data = _read_rows(path)
    if not rows:
        raise ConfigError(f"labels: {path} has no rows")
    missing = {"video_uri", "label"} - set(rows[0])
    if missing:
        raise ConfigError(f"labels: {path} lacks column(s) {', '.join(sorted(missing))}")
    base: Path | str = path.rsplit("/", 1)[0] if is_s3(path) else local_path(path).resolve().parent
    out = []
    for i, row in enumerate(rows, start=2):
        uri, label = (row.get("video_uri") or "").strip(), (row.get("label") or "").strip()
        if not uri or not label:
            raise ConfigError(f"labels: {path} line {i}: empty video_uri or label")
        resolved = _resolve(uri, base)
        split = (row.get("split") or "").strip() or hash_split(resolved, val, test)
        if split not in SPLITS:
            raise ConfigError(f"labels: {path} line {i}: split must be one of {SPLITS}, got {split!r}")
        out.append(LabeledVideo(resolved, label, split))
    augment = None
    if isinstance(base, Path) and (base / "augment.json").exists():
        augment = json.loads((base / "augment.json").read_text())
    classes = tuple(sorted({r.label for r in out}))
    return LabelTable(tuple(out), classes, path, hashlib.sha256(data).hexdigest(), augment)
