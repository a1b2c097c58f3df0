"""The lake's ``labels`` table: people's answers, append-only, and the one rule that turns them into
one label per video.

Every import writes one whole file, ``labels/labels_date=YYYY-MM-DD/<import_id>.parquet``, where
``import_id`` is the content hash of what was imported: importing the same export twice writes the
same file again and adds nothing. Answers are never edited or deleted; a correction is a newer
answer. ``LABEL_RULE`` (the ``latest_labels`` view, ``actionrec.lake.query``) resolves conflicts.

Retraining reads a *snapshot*: the resolved labels with a split per video, written once to
``label_sets/<labels_version>.parquet``. The split is the one a source pinned the video to (a
curated test set), else a hash of the video's URI alone, so a video never changes side as labels
arrive, and a run can be repeated on exactly the labels it saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from actionrec.data.labels import SPLITS, hash_split
from actionrec.errors import ConfigError
from actionrec.lake.lake import Lake, parquet_bytes
from actionrec.lake.query import query
from actionrec.lake.schema import LABELS

UTC = timezone.utc
LAKE_LABELS = "lake"  # the label source that means "this lake's labels table" (retrain --labels lake)
SNAPSHOTS = "label_sets"

@dataclass(frozen=True)
class Answer:
    """One person's answer for one video."""

    video_uri: str
    label: str
    annotator: str | None = None
    labeled_at: datetime | None = None  # when the person answered (None: at import)
    task_id: str | None = None
    split: str | None = None  # train/val/test when the source pins the video to a split


@dataclass(frozen=True)
class Imported:
    """What one import did."""

    import_id: str
    answers: int
    videos: int
    new: bool  # False: this very content was imported before (nothing added)
    labels_version: str
    uri: str

    def to_dict(self) -> dict[str, Any]:
        return {"import_id": self.import_id, "answers": self.answers, "videos": self.videos, "new": self.new,
                "labels_version": self.labels_version, "uri": self.uri}


def _import_ids(lk: Lake) -> list[str]:
    return sorted({v.uri.rsplit("/", 1)[-1].removesuffix(".parquet") for v in lk.store.list("labels")
                   if v.uri.endswith(".parquet")})


def labels_version(import_ids: Iterable[str]) -> str:
    """The labels table's version: a hash of the set of imports it holds (order-free, so two lakes
    with the same imports have the same version)."""
    return hashlib.sha256("\n".join(sorted(set(import_ids))).encode()).hexdigest()[:12]


def import_answers(lake: str, answers: list[Answer], *, source: str, content: bytes,
                   now: datetime | None = None) -> Imported:
    """Append ``answers`` as one import. ``content``: the bytes they were read from (the import's id
    is their hash, so the same file imported twice is one import)."""
    if not answers:
        raise ConfigError("the import holds no answers (no labeled, non-cancelled tasks)")
    for a in answers:
        if not a.video_uri or not a.label or not a.label.strip():
            raise ConfigError(f"an answer lacks its video or its label: {a}")
        if a.split is not None and a.split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, not {a.split!r} ({a.video_uri})")
    lk = Lake(lake).check_writable()
    import_id = hashlib.sha256(content).hexdigest()[:16]
    before = _import_ids(lk)
    version = labels_version([*before, import_id])
    now = now or datetime.now(UTC)
    rows = [{"video_uri": a.video_uri, "label": a.label.strip(), "source": source, "annotator": a.annotator,
             "labeled_at": a.labeled_at or now, "import_id": import_id, "imported_at": now,
             "labels_version": version, "task_id": a.task_id, "split": a.split} for a in answers]
    new = import_id not in before
    if new:
        uri = lk.write_part("labels", import_id, now.date(), pa.Table.from_pylist(rows, LABELS))
    else:
        uri = next(v.uri for v in lk.store.list("labels") if v.uri.endswith(f"/{import_id}.parquet"))
    return Imported(import_id, len(answers), len({a.video_uri for a in answers}), new,
                    version if new else labels_version(before), uri)


def resolved(lake: str) -> list[tuple[str, str, str]]:
    """(video_uri, label, split) for every labeled video, by ``LABEL_RULE``, sorted by URI: the split a
    source pinned the video to, else ``hash_split`` of its URI (so it never moves as labels arrive)."""
    rows = query(lake, "SELECT video_uri, label, split FROM latest_labels ORDER BY video_uri")[1]
    return [(u, lbl, split or hash_split(u)) for u, lbl, split in rows]


def snapshot(lake: str) -> str:
    """The lake's resolved labels as a label table (``video_uri, label, split``) at
    ``label_sets/<labels_version>.parquet``, written once; returns its URI for ``read_labels``.
    The split is the pinned one or ``hash_split`` of the URI (see ``resolved``)."""
    lk = Lake(lake).require()
    ids = _import_ids(lk)
    if not ids:
        raise ConfigError(f"lake {lk.root} has no labels yet: import some with `actionrec label import FILE`")
    rows = resolved(lake)
    version = labels_version(ids)
    rel = f"{SNAPSHOTS}/{version}.parquet"
    if not lk.store.exists(rel):
        table = pa.table({"video_uri": [r[0] for r in rows], "label": [r[1] for r in rows],
                          "split": [r[2] for r in rows]})
        lk.store.write_bytes(rel, parquet_bytes(table))
    return lk.store.uri(rel)


def label_source(labels: str, lake: str) -> str:
    """The label table a retrain reads: ``labels`` itself, or for ``lake`` the snapshot of the lake's
    resolved labels (see ``snapshot``)."""
    return snapshot(lake) if labels == LAKE_LABELS else labels


def new_since(lake: str, since: datetime | None) -> int:
    """Answers imported after ``since`` (all of them when None): what a retrain trigger counts."""
    if since is None:
        return int(query(lake, "SELECT count(*) FROM labels")[1][0][0])
    return int(query(lake, "SELECT count(*) FROM labels WHERE imported_at > ?", [since])[1][0][0])
