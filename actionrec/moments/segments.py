"""Labeled segments from a dense clip timeline: where in a video each label holds.

Each clip stands for the stretch of time nearest its centre (its cell: from halfway to the clip
before to halfway to the clip after; the first cell starts at 0, the last ends at the video's end).
Clip scores are averaged over a few seconds around each clip, so a noisy clip does not split a
segment (a moment is seen by every clip that overlaps it: two, for 2 s clips every second); runs
of the same smoothed top-1 label become segments; a run shorter than the minimum is merged into
the neighbour whose label scores higher over it; an edge between two segments moves onto a shot
change when one lies within the snap distance; last, segments with a low mean score are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actionrec.errors import ConfigError
from actionrec.inference.results import ClipPrediction, VideoPrediction


@dataclass(frozen=True)
class SegmentRules:
    """How a timeline becomes segments (the tag settings' segment fields, validated here)."""

    smoothing_s: float = 4.0  # seconds of the centred moving average of clip scores (0: none)
    min_score: float = 0.3  # a segment's mean score of its label, below which it is dropped
    min_seconds: float = 2.0  # shorter runs are merged into a neighbour; shorter segments dropped
    snap_s: float = 1.0  # an edge moves onto a shot change this close (0: never)

    def __post_init__(self) -> None:
        s = self.min_score
        if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or not 0 <= s <= 1:
            raise ConfigError(f"segment minimum score must be a number in [0, 1], got {s!r}")
        for name, value in (("segment smoothing", self.smoothing_s), ("segment minimum duration", self.min_seconds),
                            ("shot snap distance", self.snap_s)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


SEGMENT_DEFAULTS = SegmentRules()


@dataclass(frozen=True)
class Segment:
    label: str
    start_s: float
    end_s: float
    score: float  # mean over its clips of the label's score (0 where the label was not in a clip's top-k)
    num_clips: int

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "start_s": self.start_s, "end_s": self.end_s, "score": self.score,
                "num_clips": self.num_clips}


def cell_bounds(clips: Sequence[ClipPrediction], duration_s: float) -> np.ndarray:
    """``len(clips) + 1`` times: clip ``i`` stands for ``[bounds[i], bounds[i + 1])``."""
    centres = np.array([(c.start_s + c.end_s) / 2 for c in clips], dtype=np.float64)
    inner = (centres[1:] + centres[:-1]) / 2
    end = max(float(duration_s), float(centres[-1]))
    return np.concatenate([[0.0], inner, [end]])


def _scores(clips: Sequence[ClipPrediction]) -> tuple[list[str], np.ndarray]:
    """Labels seen in any clip's top-k, and each clip's score for each (0 where it was not in the top-k)."""
    labels = sorted({x.label for c in clips for x in c.top_k})
    column = {label: j for j, label in enumerate(labels)}
    scores = np.zeros((len(clips), len(labels)), dtype=np.float64)
    for i, c in enumerate(clips):
        for x in c.top_k:
            scores[i, column[x.label]] = x.score
    return labels, scores


def _window(clips: Sequence[ClipPrediction], seconds: float) -> int:
    """The odd number of clips that spans about ``seconds`` at the timeline's spacing."""
    if len(clips) < 2:
        return 1
    step = float(np.median(np.diff([c.start_s for c in clips])))
    return 2 * int(seconds / (2 * step) + 1e-9) + 1 if step > 0 else 1


def _smooth(scores: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` (odd) clips; at the ends, over the clips there are."""
    if window <= 1:
        return scores
    before = after = window // 2
    padded = np.pad(scores, ((before, after), (0, 0)))
    counts = np.pad(np.ones(len(scores)), (before, after))
    kernel = np.ones(window)
    sums = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(scores.shape[1])], axis=1)
    return sums / np.convolve(counts, kernel, mode="valid")[:, None]


def _runs(labels: np.ndarray) -> list[list[int]]:
    """[label, first clip, end clip (exclusive)] for each run of equal labels."""
    runs: list[list[int]] = []
    for i, lab in enumerate(labels.tolist()):
        if runs and runs[-1][0] == lab:
            runs[-1][2] = i + 1
        else:
            runs.append([lab, i, i + 1])
    return runs


def _absorb_short(runs: list[list[int]], bounds: np.ndarray, scores: np.ndarray, min_seconds: float) -> None:
    """Merge each run shorter than ``min_seconds`` (shortest first) into the neighbour whose label
    scores higher over it (the longer neighbour on a tie), until none is left or one run remains."""
    def seconds(r: list[int]) -> float:
        return float(bounds[r[2]] - bounds[r[1]])

    while len(runs) > 1:
        k = min(range(len(runs)), key=lambda j: seconds(runs[j]))
        run = runs[k]
        if seconds(run) >= min_seconds:
            return
        neighbours = [runs[j] for j in (k - 1, k + 1) if 0 <= j < len(runs)]
        best = max(neighbours, key=lambda r: (scores[run[1]:run[2], r[0]].mean(), seconds(r)))
        run[0] = best[0]
        merged: list[list[int]] = []
        for r in runs:
            if merged and merged[-1][0] == r[0]:
                merged[-1][2] = r[2]
            else:
                merged.append(r)
        runs[:] = merged


def _snap(edges: list[float], shot_changes: Sequence[float], distance: float) -> list[float]:
    """Each inner edge moved onto the nearest shot change within ``distance``, if the segments on
    both sides keep some length."""
    if distance <= 0 or not shot_changes:
        return edges
    changes = np.asarray(sorted(shot_changes), dtype=np.float64)
    out = list(edges)
    for k in range(1, len(out) - 1):
        nearest = changes[np.argmin(np.abs(changes - out[k]))]
        if abs(nearest - out[k]) <= distance and out[k - 1] < nearest < edges[k + 1]:
            out[k] = float(nearest)
    return out


def segments_from_timeline(clips: Sequence[ClipPrediction], duration_s: float, rules: SegmentRules = SEGMENT_DEFAULTS,
                           shot_changes: Sequence[float] = ()) -> list[Segment]:
    """Labeled segments of one video from its clips (in time order) and its shot changes (seconds)."""
    if not clips:
        return []
    labels, scores = _scores(clips)
    bounds = cell_bounds(clips, duration_s)
    runs = _runs(np.argmax(_smooth(scores, _window(clips, rules.smoothing_s)), axis=1))
    _absorb_short(runs, bounds, scores, rules.min_seconds)
    edges = _snap([float(bounds[r[1]]) for r in runs] + [float(bounds[-1])], shot_changes, rules.snap_s)
    segments = [Segment(labels[lab], edges[k], edges[k + 1], float(scores[first:end, lab].mean()), end - first)
                for k, (lab, first, end) in enumerate(runs)]
    return [s for s in segments if s.score >= rules.min_score and s.seconds >= rules.min_seconds]


def video_segments(result: VideoPrediction, rules: SegmentRules = SEGMENT_DEFAULTS) -> list[Segment]:
    """The segments of one dense result, snapped to its shot changes (none for a failed video)."""
    if result.status == "failed" or result.info is None:
        return []
    changes = [s.start_s for s in result.shots if s.start_kind != "start"]
    return segments_from_timeline(result.clips, result.info.duration_s, rules, changes)
