"""Drift watch: does what a tag run tagged look like what the runs before it tagged?

A tag run's mix of top-1 labels, and its histogram of top-1 confidences (``CONFIDENCE_BINS`` fixed
bins over [0, 1]), are compared with the pooled ones of the trailing window of earlier runs of the
same model name, each by the Jensen-Shannon divergence in bits (0: the same distribution, 1: nothing
in common). The run is flagged when either divergence is past the threshold, unless the run or
the window holds too few videos to tell a shift from chance; every outcome has a reason in words.

The defaults come from a measurement (``python -m bench.drift_noise``, numbers in the README):
the divergence between two draws of one and the same mix (a run of n videos against a window of 7
such runs) is sampling noise that shrinks as 1/n and grows with the number of labels.

- ``DEFAULT_MIN_VIDEOS`` = 100: at 100 videos and 10 labels, the noise is 0.018 bits at the median
  and 0.053 at the 99th percentile (20 labels: 0.045 and 0.088); at 20 videos it is 0.11 at the
  median, as large as a real shift, so a small night is compared but never flagged.
- ``DEFAULT_THRESHOLD`` = 0.1 bits: above the 99th percentile of that noise up to 20 labels, and
  below the divergence of the shifts worth a look (40% of the videos moving to one rare label:
  0.18 bits; a new label taking 30%: 0.17; a skewed mix turning uniform: 0.10). Swapping the two
  most frequent labels (0.04 bits) is not flagged. With many more labels (a Kinetics-400 model),
  raise ``drift_min_videos``: the noise grows with the number of labels seen.
- ``DEFAULT_WINDOW`` = 7 runs: a week of nightly runs, so a weekly rhythm in the archive is part of
  the reference, and the pooled window (7 x 100 videos at least) adds little noise of its own.

A new champion legitimately changes the mix: the run is still flagged, and its reason says that the
window's runs used another model version. Reading the lake is the only thing here that can fail for
reasons outside the code (``IO_ERRORS``); the tag flow records such a failure as the run's reason.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actionrec.errors import StorageError
from actionrec.lake.schema import RUN_COMPLETE

MEASURE = "jensen-shannon"  # in bits (base 2), so it lies in [0, 1]
SMOOTHING = 1e-10  # added to every bin's probability: every logarithm finite, the value moved by < 1e-8
CONFIDENCE_BINS = 10  # top1_score in [0, 0.1), [0.1, 0.2), ... [0.9, 1.0]
TAGGED = ("ok", "partial")  # the rows that have a top-1 label
FLOW = "tag"
DEFAULT_WINDOW = 7
DEFAULT_THRESHOLD = 0.1
DEFAULT_MIN_VIDEOS = 100
NO_EARLIER_RUNS = "no earlier runs to compare with"
# What reading the lake may raise when storage, not the code, is at fault (pyarrow's I/O errors are
# OSErrors): the tag flow records these as the run's drift reason instead of failing the run.
IO_ERRORS: tuple[type[BaseException], ...] = (StorageError, OSError)


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """The Jensen-Shannon divergence of two histograms over the same bins, in bits: 0 for the same
    distribution, 1 for disjoint ones; symmetric. Counts or probabilities alike (each is normalised);
    ``SMOOTHING`` is added to every normalised bin so that an empty bin needs no special case.
    Histograms of different lengths, negative or non-finite counts, or an empty histogram are a
    ``ValueError``."""
    if len(p) != len(q):
        raise ValueError(f"histograms over different bins: {len(p)} and {len(q)} bins")
    if not p:
        raise ValueError("histograms with no bins")
    a, b = _normalised(p), _normalised(q)
    m = [(x + y) / 2 for x, y in zip(a, b, strict=True)]
    kl_a = sum(x * math.log2(x / z) for x, z in zip(a, m, strict=True))
    kl_b = sum(y * math.log2(y / z) for y, z in zip(b, m, strict=True))
    return min(1.0, max(0.0, (kl_a + kl_b) / 2))


def _normalised(h: Sequence[float]) -> list[float]:
    if any(not math.isfinite(x) or x < 0 for x in h):
        raise ValueError(f"a histogram holds a negative or non-finite count: {list(h)[:10]}")
    total = math.fsum(h)
    if total <= 0:
        raise ValueError("an empty histogram (no counts)")
    smoothed = [x / total + SMOOTHING for x in h]
    total = math.fsum(smoothed)
    return [x / total for x in smoothed]


def aligned(p: Mapping[str, float], q: Mapping[str, float]) -> tuple[list[str], list[float], list[float]]:
    """Two histograms keyed by label over the union of their labels (sorted): labels, p, q."""
    keys = sorted(set(p) | set(q))
    return keys, [float(p.get(k, 0)) for k in keys], [float(q.get(k, 0)) for k in keys]


def confidence_bin(score: float) -> int:
    """The bin of a top-1 score: ``CONFIDENCE_BINS`` equal bins over [0, 1] (1.0 in the last)."""
    return min(CONFIDENCE_BINS - 1, max(0, math.floor(score * CONFIDENCE_BINS)))


@dataclass(frozen=True)
class LabelShare:
    """One label's share of this run's videos and of the window's."""

    label: str
    run: float
    window: float

    @property
    def change(self) -> float:
        return self.run - self.window


@dataclass(frozen=True)
class Drift:
    """A run against its window: the divergences (None: nothing was compared), the flag and why.

    ``shares``: every label of either side, the largest change of share first; ``confidence_run``
    and ``confidence_window``: the share of videos per confidence bin."""

    run_id: str
    reason: str
    labels: float | None = None
    confidence: float | None = None
    flag: bool = False
    measure: str = MEASURE
    threshold: float = DEFAULT_THRESHOLD
    videos: int = 0
    window_runs: tuple[str, ...] = ()
    window_videos: int = 0
    window_versions: tuple[str, ...] = ()  # versions of the window's runs other than this run's
    shares: tuple[LabelShare, ...] = ()
    confidence_run: tuple[float, ...] = field(default=(), repr=False)
    confidence_window: tuple[float, ...] = field(default=(), repr=False)
    error: str | None = None  # why the drift could not be computed (the lake could not be read)

    def columns(self) -> dict[str, Any]:
        """The ``runs`` row's drift columns."""
        return {"drift_measure": self.measure, "drift_labels": self.labels, "drift_confidence": self.confidence,
                "drift_flag": self.flag, "drift_reason": self.reason}

    def markdown(self, top: int = 10) -> str:
        """A person's view of the comparison: the reason, the labels whose share changed most, and
        the confidence histograms side by side."""
        lines = [f"# Drift in tag run `{self.run_id}`", "", _md(self.reason), "",
                 f"{self.measure} divergence in bits (0: the same mix, 1: nothing in common): label mix "
                 f"{_bits(self.labels)}, confidence {_bits(self.confidence)}; threshold {self.threshold:g}. "
                 f"This run: {self.videos} videos; the earlier runs: {self.window_videos} videos in "
                 f"{len(self.window_runs)} runs.", ""]
        if self.shares:
            lines += [f"## Labels whose share changed most (top {min(top, len(self.shares))} of {len(self.shares)})",
                      "", "| label | this run | earlier runs | change |", "|---|---:|---:|---:|"]
            lines += [f"| {_md(s.label)} | {s.run:.1%} | {s.window:.1%} | {100 * s.change:+.1f} pts |"
                      for s in self.shares[:top]]
            lines.append("")
        if self.confidence_run and self.confidence_window:
            lines += ["## Top-1 confidence", "", "| confidence | this run | earlier runs |", "|---|---:|---:|"]
            for i, (a, b) in enumerate(zip(self.confidence_run, self.confidence_window, strict=True)):
                lines.append(f"| {i / CONFIDENCE_BINS:.1f}-{(i + 1) / CONFIDENCE_BINS:.1f} | {a:.1%} | {b:.1%} |")
            lines.append("")
        if self.window_runs:
            lines += ["Earlier runs: " + ", ".join(f"`{r}`" for r in self.window_runs), ""]
        return "\n".join(lines)


def _runs(n: int) -> str:
    return "run" if n == 1 else f"{n} runs"


def _bits(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _md(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def not_computed(run_id: str, error: BaseException, threshold: float = DEFAULT_THRESHOLD) -> Drift:
    """The record of a run whose drift could not be computed (the lake could not be read)."""
    why = f"{type(error).__name__}: {str(error)[:300]}"
    return Drift(run_id, f"drift not computed: {why}", threshold=threshold, error=why)


def drift_for_run(lake: str | os.PathLike, run_id: str, model_name: str, window: int = DEFAULT_WINDOW, *,
                  threshold: float = DEFAULT_THRESHOLD, min_videos: int = DEFAULT_MIN_VIDEOS,
                  before: datetime | None = None) -> Drift:
    """Compare run ``run_id`` (its ``ok`` and ``partial`` predictions by ``model_name``) with the
    pooled predictions of the ``window`` latest earlier runs of the tag flow with the same model
    name that are complete and tagged at least one video (an incomplete run's mix lacks its lost
    shards). "Earlier": started before ``before`` (default: this run's own start, when its ``runs``
    row exists, else every other run). Flagged when the label or the confidence divergence exceeds
    ``threshold`` and both sides hold at least ``min_videos`` videos. Raises ``IO_ERRORS`` when the
    lake cannot be read."""
    import pyarrow.dataset as ds

    from actionrec.lake.lake import Lake

    lk = Lake(lake)
    runs = lk.table("runs", ["run_id", "flow", "model_name", "model_version", "started_at", "status", "ok",
                             "partial"]).to_pylist()
    if before is None:
        before = next((r["started_at"] for r in runs if r["run_id"] == run_id), None)
    earlier = sorted((r for r in runs if r["run_id"] != run_id and r["flow"] == FLOW and r["model_name"] == model_name
                      and r["status"] == RUN_COMPLETE and (r["ok"] or 0) + (r["partial"] or 0) > 0
                      and (before is None or r["started_at"] < before)),
                     key=lambda r: (r["started_at"], r["run_id"]), reverse=True)[:window]
    chosen = {r["run_id"]: r["model_version"] for r in earlier}
    wanted = (ds.field("run_id").isin([run_id, *chosen]) & (ds.field("model_name") == model_name)
              & ds.field("status").isin(list(TAGGED)))
    preds = lk.table("predictions", ["run_id", "model_version", "top1_label", "top1_score"], filter=wanted)
    labels: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}  # key: this run?
    confidence = {True: [0] * CONFIDENCE_BINS, False: [0] * CONFIDENCE_BINS}
    versions: set[str] = set()
    for rid, version, label, score in zip(*(preds.column(c).to_pylist() for c in preds.column_names), strict=True):
        if label is None:
            continue
        mine = rid == run_id
        labels[mine][label] += 1
        if score is not None and math.isfinite(score):
            confidence[mine][confidence_bin(score)] += 1
        if mine:
            versions.add(version)
    videos, window_videos = sum(labels[True].values()), sum(labels[False].values())
    base = {"run_id": run_id, "threshold": threshold, "videos": videos, "window_runs": tuple(chosen),
            "window_videos": window_videos}
    if not chosen:
        return Drift(reason=NO_EARLIER_RUNS, **base)
    if not videos:
        return Drift(reason="this run tagged no videos: nothing to compare", **base)
    if not window_videos:
        return Drift(reason=f"the predictions of the earlier {_runs(len(chosen))} are gone from the lake: "
                            "nothing to compare with", **base)

    keys, mine, theirs = aligned(labels[True], labels[False])
    label_js = jensen_shannon(mine, theirs)
    conf_js = (jensen_shannon(confidence[True], confidence[False])
               if sum(confidence[True]) and sum(confidence[False]) else None)
    shares = tuple(sorted((LabelShare(k, a / videos, b / window_videos) for k, a, b in zip(keys, mine, theirs,
                                                                                          strict=True)),
                          key=lambda s: (-abs(s.change), s.label)))
    other_versions = tuple(sorted({v for v in chosen.values() if v not in versions}))
    runs_on_others = sum(v not in versions for v in chosen.values())
    values = f"labels {label_js:.3f} bits, confidence {_bits(conf_js)} bits"
    against = f"against the last {_runs(len(chosen))} of {model_name} ({window_videos} videos)"
    past = [what for what, v in (("the label mix", label_js), ("the confidences", conf_js))
            if v is not None and v > threshold]
    flag = False
    if videos < min_videos:
        reason = (f"not flagged: this run tagged {videos} videos, fewer than {min_videos} (too few to tell a "
                  f"shift from chance); {values} {against}")
    elif window_videos < min_videos:
        reason = (f"not flagged: the earlier runs hold {window_videos} videos, fewer than {min_videos} (too few "
                  f"to tell a shift from chance); {values} {against}")
    elif past:
        flag = True
        reason = f"shift: {' and '.join(past)} moved past {threshold:g} bits ({values}) {against}"
    else:
        reason = f"no shift: {values}, within {threshold:g} bits, {against}"
    if other_versions:
        reason += (f"; {runs_on_others} of the earlier {_runs(len(chosen))} used another model version "
                   f"({', '.join(other_versions)}) than this run ({', '.join(sorted(versions))}): a new champion "
                   "changes the mix by itself")
    return Drift(reason=reason, labels=label_js, confidence=conf_js, flag=flag, shares=shares,
                 window_versions=other_versions,
                 confidence_run=tuple(c / max(1, sum(confidence[True])) for c in confidence[True]),
                 confidence_window=tuple(c / max(1, sum(confidence[False])) for c in confidence[False]), **base)
