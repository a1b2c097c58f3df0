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
from actionrec.options import option

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


def resolve_uri(uri: str, base: Path | str) -> str:
    """A label table's URI as the lake names videos: relative paths resolved against ``base`` (the
    table's folder or S3 prefix), local paths as absolute ``file://`` URIs."""
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


@dataclass(frozen=True)
class LabelRules:
    """Repairs a person may opt into; without them, a table that needs one is refused."""

    fold_case: bool = option(False, "labels that differ only in case are one class, spelled as most rows spell it",
                             flag="--fold-label-case")
    drop_repeats: bool = option(False, "a row repeated word for word (same video, label and split) counts once",
                                flag="--drop-repeated-rows")


NO_REPAIRS = LabelRules()


def _text(path: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark (spreadsheet exports)
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"labels: {path} is not UTF-8 text (byte {e.start} cannot be read as UTF-8: probably "
                          "Latin-1 or Windows-1252; save it as UTF-8)") from e


def _rows(path: str, data: bytes) -> tuple[list[str], list[dict[str, str | None]]]:
    """The header and the rows, as text."""
    if path.lower().endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except pa.ArrowException as e:
            raise ConfigError(f"labels: {path} is not a readable Parquet file: {e}") from e
        rows = [{k: (None if v is None else str(v)) for k, v in zip(table.column_names, values, strict=True)}
                for values in zip(*(c.to_pylist() for c in table.columns), strict=True)] if table.num_columns else []
        return list(table.column_names), rows
    # newline="" lets the csv module see quoted fields that hold line breaks or commas.
    reader = csv.reader(io.StringIO(_text(path, data), newline=""))
    header = [h.strip() for h in next(reader, [])]
    return header, [dict(zip(header, values, strict=False)) for values in reader if any(v.strip() for v in values)]


def _listed(problems: list[str], limit: int = 20) -> str:
    return "; ".join(problems[:limit]) + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")


def read_labels(path: str | os.PathLike, *, rules: LabelRules = NO_REPAIRS, val: float = VAL_SHARE,
                test: float = TEST_SHARE) -> LabelTable:
    """Read and validate a label table. Every problem is found and listed with its row numbers
    (the header is row 1): a video named twice (with two labels, in two splits, or repeated), a
    repeated column, labels that differ only in case, empty fields, unknown splits. Classes are
    sorted for a stable class-id order."""
    path = os.fspath(path)
    data = _read_bytes(path)
    header, rows = _rows(path, data)
    if not rows:
        raise ConfigError(f"labels: {path} has no rows")
    missing = {"video_uri", "label"} - set(header)
    if missing:
        raise ConfigError(f"labels: {path} lacks column(s) {', '.join(sorted(missing))}")
    problems = [f"column {name!r} appears {header.count(name)} times" for name in sorted(set(header))
                if header.count(name) > 1]
    base: Path | str = path.rsplit("/", 1)[0] if is_s3(path) else local_path(path).resolve().parent
    parsed: list[tuple[int, str, str, str, str]] = []  # (row, resolved uri, label, split, uri as written)
    for i, row in enumerate(rows, start=2):
        uri, label = (row.get("video_uri") or "").strip(), (row.get("label") or "").strip()
        if not uri or not label:
            problems.append(f"row {i}: empty video_uri or label")
            continue
        resolved = resolve_uri(uri, base)
        split = (row.get("split") or "").strip() or hash_split(relative_identity(resolved, base), val, test)
        if split not in SPLITS:
            problems.append(f"row {i}: split must be one of {', '.join(SPLITS)}, not {split!r}")
            continue
        parsed.append((i, resolved, label, split, uri))

    spellings: dict[str, dict[str, list[int]]] = {}
    for i, _, label, _, _ in parsed:
        spellings.setdefault(label.casefold(), {}).setdefault(label, []).append(i)
    canonical: dict[str, str] = {}
    for variants in spellings.values():
        if len(variants) > 1 and not rules.fold_case:
            problems.append("labels that differ only in case: " + ", ".join(
                f"{name!r} (rows {', '.join(map(str, ids[:3]))}{'...' if len(ids) > 3 else ''})"
                for name, ids in sorted(variants.items())))
        most = max(sorted(variants), key=lambda name: len(variants[name]))
        canonical.update({name: most for name in variants})

    out: list[LabeledVideo] = []
    first: dict[str, tuple[int, str, str]] = {}
    for i, resolved, label, split, uri in parsed:
        label = canonical[label]
        if resolved in first:
            j, other_label, other_split = first[resolved]
            if (other_label, other_split) == (label, split) and rules.drop_repeats:
                continue
            how = (f"with labels {other_label!r} and {label!r}" if other_label != label else
                   f"in {other_split} and {split}" if other_split != split else "twice")
            problems.append(f"rows {j} and {i} name the same video {uri} {how}")
            continue
        first[resolved] = (i, label, split)
        out.append(LabeledVideo(resolved, label, split))
    if problems:
        raise ConfigError(f"labels: {path} has {len(problems)} problem(s): {_listed(problems)}")
    augment = None
    if isinstance(base, Path) and (base / "augment.json").exists():
        augment = json.loads((base / "augment.json").read_text())
    classes = tuple(sorted({r.label for r in out}))
    return LabelTable(tuple(out), classes, path, hashlib.sha256(data).hexdigest(), augment)
