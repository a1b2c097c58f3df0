"""How well found segments match known ones: recall and precision at a temporal IoU, label accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Span = tuple[str, float, float]  # label, start_s, end_s


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class SegmentScores:
    """``recall``: true segments found (same label, IoU >= ``min_iou``), one found segment each;
    ``precision``: found segments that match one; ``label_accuracy``: the share of the true segments'
    time where the found label is the true one (no segment there counts as wrong)."""

    recall: float
    precision: float
    label_accuracy: float
    true_segments: int
    found_segments: int
    matched: int
    min_iou: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_segments(truth: Sequence[Span], found: Sequence[Span], min_iou: float = 0.5,
                   step_s: float = 0.1) -> SegmentScores:
    """Greedy one-to-one matching, best IoU first (at IoU >= 0.5 a true segment can overlap that
    much with at most one of non-overlapping found segments, so greedy is exact there)."""
    pairs = sorted(((temporal_iou((t[1], t[2]), (f[1], f[2])), i, j) for i, t in enumerate(truth)
                    for j, f in enumerate(found) if t[0] == f[0]), reverse=True)
    used_t: set[int] = set()
    used_f: set[int] = set()
    for iou, i, j in pairs:
        if iou >= min_iou and i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
    right = total = 0
    for label, start, end in truth:
        for t in np.arange(start + step_s / 2, end, step_s):
            total += 1
            right += any(f[0] == label and f[1] <= t < f[2] for f in found)
    n = len(used_t)
    return SegmentScores(recall=n / len(truth) if truth else 1.0, precision=n / len(found) if found else 1.0,
                         label_accuracy=right / total if total else 1.0, true_segments=len(truth),
                         found_segments=len(found), matched=n, min_iou=min_iou)
