"""Label tables: ``video_uri, label`` and an optional ``split`` (train | val | test).

Relative URIs are resolved against the table's own folder (or S3 prefix), so a dataset folder can
move. Without a ``split`` column the split is a stable hash of a location-independent name of the
video (its path relative to the table, or its object key): moving or re-mounting the data set never
moves a video across splits, and a video keeps its side as the table grows. An ``augment.json``
beside the table declares what a mirror or a time reversal does to each label (see
``actionrec.data.transforms.LabelAwareAugment``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionrec.errors import ConfigError
from actionrec.io.uris import is_s3, local_path, normalize_uri, relative_identity, split_s3

SPLITS = ("train", "val", "test")
VAL_SHARE = 0.15
TEST_SHARE = 0.15


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


def hash_split(identity: str, val: float = VAL_SHARE, test: float = TEST_SHARE) -> str:
    """Stable split from a video's identity alone (sha256), independent of the rest of the table.
    ``identity`` should not depend on where the data set is mounted (see ``relative_identity``)."""
    u = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16) / 0x100000000
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


def _resolve(uri: str, base: Path | str) -> str:
    if is_s3(uri) or uri.startswith("file://"):
        return normalize_uri(uri)
    if isinstance(base, str):  # a table in S3: relative URIs are keys beside it
        return f"{base}/{uri.removeprefix('./')}" if not uri.startswith("/") else normalize_uri(uri)
    path = Path(uri)
    if not path.is_absolute():
        path = base / path
    return normalize_uri(path)


def _read_bytes(path: str) -> bytes:
    if is_s3(path):
        from actionrec.io.s3 import get_bytes

        data = get_bytes(*split_s3(path))
    else:
        try:
            data = local_path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            data = None
    if data is None:
        raise ConfigError(f"labels: file not found: {path}")
    return data


def _rows(path: str, data: bytes) -> list[dict[str, str | None]]:
    if path.lower().endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except pa.ArrowException as e:
            raise ConfigError(f"labels: {path} is not a readable Parquet file: {e}") from e
        return [{k: (None if v is None else str(v)) for k, v in row.items()} for row in table.to_pylist()]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"labels: {path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    # newline="" lets the csv module see quoted fields that hold line breaks or commas.
    return list(csv.DictReader(io.StringIO(text, newline="")))


def read_labels(path: str | os.PathLike, *, val: float = VAL_SHARE, test: float = TEST_SHARE) -> LabelTable:
    """Read and validate a label table; classes are sorted for a stable class-id order."""
    path = os.fspath(path)
    data = _read_bytes(path)
    rows = _rows(path, data)
    if not rows:
        raise ConfigError(f"labels: {path} has no rows")
    missing = {"video_uri", "label"} - set(rows[0])
    if missing:
        raise ConfigError(f"labels: {path} lacks column(s) {', '.join(sorted(missing))}")
    base: Path | str = path.rsplit("/", 1)[0] if is_s3(path) else local_path(path).resolve().parent
    out: list[LabeledVideo] = []
    first_row: dict[str, int] = {}
    duplicates: list[str] = []
    for i, row in enumerate(rows, start=2):  # line numbers as a spreadsheet shows them (header is 1)
        uri, label = (row.get("video_uri") or "").strip(), (row.get("label") or "").strip()
        if not uri or not label:
            raise ConfigError(f"labels: {path} line {i}: empty video_uri or label")
        resolved = _resolve(uri, base)
        if resolved in first_row:
            duplicates.append(f"lines {first_row[resolved]} and {i} ({uri})")
            continue
        first_row[resolved] = i
        split = (row.get("split") or "").strip() or hash_split(relative_identity(resolved, base), val, test)
        if split not in SPLITS:
            raise ConfigError(f"labels: {path} line {i}: split must be one of {SPLITS}, got {split!r}")
        out.append(LabeledVideo(resolved, label, split))
    if duplicates:
        shown = "; ".join(duplicates[:5]) + (f"; and {len(duplicates) - 5} more" if len(duplicates) > 5 else "")
        raise ConfigError(f"labels: {path} names the same video more than once: {shown}")
    augment = None
    if isinstance(base, Path) and (base / "augment.json").exists():
        augment = json.loads((base / "augment.json").read_text())
    classes = tuple(sorted({r.label for r in out}))
    return LabelTable(tuple(out), classes, path, hashlib.sha256(data).hexdigest(), augment)
