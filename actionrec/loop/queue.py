"""The labeling queue: after a tag run, the videos most worth a person's time.

A candidate is a video this run tagged (``ok`` or ``partial``) that nobody has labeled and that was
never queued before. Each gets an uncertainty score from its top-k (``1 - margin``, where the
margin is top-1 minus top-2 probability) and, when another version of the same model has tagged
the same video (the former champion, or a challenger that was run), whether the two disagree on
top-1: a disagreement outranks any uncertainty. When the run's model is the champion and a newer
version of it was trained but not promoted (the latest challenger), the challenger scores the most
uncertain candidates (``CHALLENGER_POOL`` times the queue size) so that its disagreements count
too. A per-label quota fills the first slots with the
most uncertain videos of each predicted label, rarest labels first, so that a label the model
rarely predicts still gets looked at; the rest of the queue goes to the highest scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from actionrec.lake.lake import Lake
from actionrec.lake.schema import LABELING_QUEUE

UTC = timezone.utc
DISAGREEMENT_BONUS = 1.0  # added to the score: any disagreement outranks any uncertainty (which is <= 1)
CHALLENGER_POOL = 3  # the challenger scores this many candidates per queue slot, the most uncertain first


def margin(top_k: list[dict[str, Any]]) -> float:
    """Top-1 minus top-2 probability (top-1 alone when there is no second label)."""
    scores = sorted((float(x["score"]) for x in top_k), reverse=True)
    return scores[0] - (scores[1] if len(scores) > 1 else 0.0) if scores else 0.0


def entropy(top_k: list[dict[str, Any]]) -> float:
    """Entropy in bits of the top-k probabilities, with the mass outside the top-k as one more
    outcome (a lower bound of the full distribution's entropy: the lake keeps only the top-k)."""
    p = [max(float(x["score"]), 0.0) for x in top_k]
    p.append(max(1.0 - sum(p), 0.0))
    return -sum(q * math.log2(q) for q in p if q > 0)


@dataclass(frozen=True)
class Candidate:
    video_uri: str
    video_etag: str
    top_k: list[dict[str, Any]]
    other: tuple[str, str] | None = None  # (model version, its top-1 label) when another version disagrees
    score: float = field(init=False)
    margin: float = field(init=False)
    entropy: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "margin", margin(self.top_k))
        object.__setattr__(self, "entropy", entropy(self.top_k))
        object.__setattr__(self, "score", 1.0 - self.margin + (DISAGREEMENT_BONUS if self.other else 0.0))

    @property
    def label(self) -> str | None:
        return self.top_k[0]["label"] if self.top_k else None

    def reason(self, quota: bool) -> str:
        parts = []
        if self.other:
            parts.append(f"disagreement: version {self.other[0]} says {self.other[1]!r}")
        parts.append(f"low margin {self.margin:.2f} (entropy {self.entropy:.2f} bits)")
        if quota:
            parts.append(f"label quota for {self.label!r}")
        return "; ".join(parts)


def choose(candidates: list[Candidate], size: int, per_label: int) -> list[tuple[Candidate, bool]]:
    """(candidate, taken for its label's quota) for at most ``size`` candidates, best score first."""
    by_label: dict[str | None, list[Candidate]] = {}
    for c in sorted(candidates, key=lambda c: (-c.score, c.video_uri)):
        by_label.setdefault(c.label, []).append(c)
    taken: dict[str, bool] = {}
    for _, group in sorted(by_label.items(), key=lambda kv: (len(kv[1]), str(kv[0]))):  # rarest first
        for c in group[:per_label]:
            if len(taken) < size:
                taken[c.video_uri] = True
    for c in sorted(candidates, key=lambda c: (-c.score, c.video_uri)):
        if len(taken) >= size:
            break
        taken.setdefault(c.video_uri, False)
    chosen = [c for c in candidates if c.video_uri in taken]
    return [(c, taken[c.video_uri]) for c in sorted(chosen, key=lambda c: (-c.score, c.video_uri))]


def candidates(lake: str, run_id: str) -> tuple[str, str, list[Candidate]]:
    """(model name, model version, candidates) of a tag run: its tagged videos that are neither labeled
    nor queued, each with the latest top-1 of another version of the same model, if any."""
    from actionrec.lake.query import query

    sql = """
    WITH this AS (
      SELECT video_uri, video_etag, model_name, model_version, top_k FROM predictions
      WHERE run_id = ? AND status IN ('ok', 'partial')),
    other AS (
      SELECT p.video_uri, p.model_version, p.top1_label,
             row_number() OVER (PARTITION BY p.video_uri ORDER BY p.processed_at DESC, p.run_id DESC) AS _rank
      FROM predictions p JOIN this t ON p.video_uri = t.video_uri AND p.model_name = t.model_name
      WHERE p.model_version <> t.model_version AND p.status = 'ok')
    SELECT t.video_uri, t.video_etag, t.model_name, t.model_version, t.top_k, o.model_version, o.top1_label
    FROM this t LEFT JOIN other o ON o.video_uri = t.video_uri AND o._rank = 1
    WHERE t.video_uri NOT IN (SELECT video_uri FROM labels)
      AND t.video_uri NOT IN (SELECT video_uri FROM labeling_queue)
    ORDER BY t.video_uri
    """
    rows = query(lake, sql, [run_id])[1]
    if not rows:
        return "", "", []
    found = []
    for uri, etag, _, _, top_k, other_version, other_label in rows:
        top = list(top_k or [])
        disagrees = other_label is not None and top and other_label != top[0]["label"]
        found.append(Candidate(uri, etag, top, (other_version, other_label) if disagrees else None))
    return rows[0][2], rows[0][3], found


def latest_challenger(lake: str, name: str, version: str) -> str | None:
    """The newest version of ``name`` in the lake's registry, trained after ``version`` and not the
    champion: a candidate that was not promoted. None unless ``version`` is the champion."""
    lk = Lake(lake)
    if not name or lk.champion(name) != version:
        return None
    versions = lk.versions(name)  # oldest first
    newer = versions[versions.index(version) + 1:] if version in versions else []
    return newer[-1] if newer else None


def challenge(lake: str, name: str, challenger: str, found: list[Candidate], pool: int,
              runner: Any = None) -> list[Candidate]:
    """``found`` with the challenger's top-1 on the ``pool`` most uncertain candidates: where it
    disagrees with the run's top-1, the candidate carries the disagreement. ``runner``: an open
    runner for the challenger (default: the default engine)."""
    from dataclasses import replace

    from actionrec.inference.predictor import Predictor
    from actionrec.models.refs import PinnedModel

    ask = sorted((c for c in found if c.other is None), key=lambda c: (-c.score, c.video_uri))[:pool]
    if not ask:
        return found
    if runner is None:
        from actionrec.engines.choice import choose_engine
        from actionrec.engines.runners import open_runner

        runner = open_runner(PinnedModel(f"{name}@{challenger}", name, challenger), choose_engine("auto", "auto", None),
                             lake=lake)
    predictor = Predictor(runner, decode_backend="thread", decode_workers=1, batch_size=4)
    theirs = {r.uri: r.top_k[0].label for r in predictor.predict([c.video_uri for c in ask], top_k=1, clips=1)
              if r.status == "ok" and r.top_k}
    return [replace(c, other=(challenger, theirs[c.video_uri]))
            if c.video_uri in theirs and theirs[c.video_uri] != c.label else c for c in found]


def queue_run(lake: str, run_id: str, run_date: date, *, size: int, per_label: int,
              challenger: bool = True, now: datetime | None = None) -> pa.Table:
    """Pick and write the run's labeling queue (``labeling_queue/run_date=.../<run_id>.parquet``);
    returns the rows (none when ``size`` is 0 or nothing is left to ask about). ``challenger``: let
    the latest challenger, if there is one, score the most uncertain candidates."""
    if size <= 0:
        return LABELING_QUEUE.empty_table()
    name, version, found = candidates(lake, run_id)
    rival = latest_challenger(lake, name, version) if challenger and found else None
    if rival is not None:
        found = challenge(lake, name, rival, found, CHALLENGER_POOL * size)
    picked = choose(found, size, per_label)
    if not picked:
        return LABELING_QUEUE.empty_table()
    now = now or datetime.now(UTC)
    rows = [{"run_id": run_id, "video_uri": c.video_uri, "video_etag": c.video_etag, "model_name": name,
             "model_version": version, "reason": c.reason(quota), "score": round(c.score, 6), "rank": rank,
             "top1_label": c.label, "top1_score": c.top_k[0]["score"] if c.top_k else None, "margin": c.margin,
             "entropy": c.entropy, "top_k": c.top_k, "queued_at": now}
            for rank, (c, quota) in enumerate(picked, start=1)]
    table = pa.Table.from_pylist(rows, LABELING_QUEUE)
    Lake(lake).write_part("labeling_queue", run_id, run_date, table)
    return table


def queue_like(lake: str, label: str, k: int, *, model_name: str | None = None,
               now: datetime | None = None) -> pa.Table:
    """Queue the ``k`` videos most like those people labeled ``label`` (by embedding, see
    ``actionrec.lake.similar.more_like``), never one already labeled or queued: a source for the
    queue when a class needs more examples. The rows go to ``labeling_queue`` under a run id of their
    own (``like-<time>-<hex>``), with the nearest example's cosine as score."""
    import uuid

    from actionrec.errors import ConfigError
    from actionrec.lake.query import query
    from actionrec.lake.similar import more_like
    from actionrec.loop.labels import resolved

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    examples = [u for u, lbl, _ in resolved(lake) if lbl == label]
    if not examples:
        raise ConfigError(f"no video in {lake} is labeled {label!r}: nothing to find more of")
    queued = [r[0] for r in query(lake, "SELECT DISTINCT video_uri FROM labeling_queue")[1]]
    found = more_like(lake, examples, k=k, model_name=model_name, exclude=queued)
    now = now or datetime.now(UTC)
    run_id = f"like-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    if not found:
        return LABELING_QUEUE.empty_table()
    uris = [n.video_uri for n in found]
    tops = {u: top for u, top in query(
        lake, "SELECT video_uri, top_k FROM latest_predictions WHERE model_name = ? AND model_version = ? "
              "AND video_uri IN (SELECT unnest(?))", [found[0].model_name, found[0].model_version, uris])[1]}
    rows = []
    for rank, n in enumerate(found, start=1):
        top = list(tops.get(n.video_uri) or [])
        rows.append({"run_id": run_id, "video_uri": n.video_uri, "video_etag": n.video_etag,
                     "model_name": n.model_name, "model_version": n.model_version,
                     "reason": f"similar to the videos labeled {label!r} (cosine {n.score:.2f})",
                     "score": float(n.score), "rank": rank, "top1_label": top[0]["label"] if top else None,
                     "top1_score": top[0]["score"] if top else None, "margin": margin(top) if top else None,
                     "entropy": entropy(top) if top else None, "top_k": top, "queued_at": now})
    table = pa.Table.from_pylist(rows, LABELING_QUEUE)
    Lake(lake).write_part("labeling_queue", run_id, now.date(), table)
    return table
