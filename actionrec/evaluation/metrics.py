"""Classification metrics for video action recognition, a Markdown report and a confusion-matrix picture.

Inputs are video-level class probabilities (``[N, K]``, already averaged over a video's clips) and
the true class ids. Everything is computed with numpy; the report, the picture and the per-class
table live in ``actionrec.evaluation.report``.

Conventions, chosen so that results are deterministic and never NaN:

* Ties between scores are broken towards the lower class id, for top-1 and for top-k alike, so
  a video counted correct at top-1 is always correct at top-k.
* Top-5 uses ``k = min(5, K)``; with fewer than 5 classes every video is a top-5 hit.
* A class that is never predicted has precision 0.0; a class with no videos has recall 0.0 and is
  left out of the mean class accuracy; F1 is 0.0 when precision + recall is 0.
* ECE uses equal-width confidence bins ``(lo, hi]`` over ``[0, 1]``, the first bin also holding 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ClassMetrics",
    "EvaluationResult",
    "confusion_matrix",
    "evaluate_scores",
    "expected_calibration_error",
    "most_confused",
]

TOP_K = 5
ECE_BINS = 15
# Probabilities that overshoot [0, 1] by float rounding only are accepted (and clipped).
_PROB_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class; ``support`` is its number of videos."""

    label: str
    support: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one evaluation run. Accuracies are fractions in 0..1; ``confusion`` is ``[true][pred]``."""

    num_videos: int
    top1: float
    top5: float
    mean_class_accuracy: float
    ece: float
    confusion: list[list[int]]
    per_class: list[ClassMetrics]
    classes: list[str]

    @property
    def top_k(self) -> int:
        """The k actually used for ``top5``: ``min(5, number of classes)``."""
        return min(TOP_K, len(self.classes))

    def to_dict(self) -> dict:
        """Everything, as plain Python values (``json.dumps`` accepts it)."""
        return {
            **self.summary(),
            "confusion": [[int(c) for c in row] for row in self.confusion],
            "per_class": [
                {
                    "label": m.label,
                    "support": int(m.support),
                    "precision": float(m.precision),
                    "recall": float(m.recall),
                    "f1": float(m.f1),
                }
                for m in self.per_class
            ],
            "classes": list(self.classes),
        }

    def summary(self) -> dict:
        """The headline numbers only."""
        return {
            "num_videos": int(self.num_videos),
            "top1": float(self.top1),
            "top5": float(self.top5),
            "mean_class_accuracy": float(self.mean_class_accuracy),
            "ece": float(self.ece),
        }


# --------------------------------------------------------------------------------------------------
# validation helpers


def _as_class_ids(values: Any, name: str, num_classes: int | None = None) -> np.ndarray:
    """A 1-D int64 array of class ids; ValueError naming ``name`` otherwise."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class ids, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if num_classes is not None:
        bad = (arr < 0) | (arr >= num_classes)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} must be class ids in [0, {num_classes}), got {int(arr[i])} at position {i}"
            )
    return arr


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_probabilities(arr: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (found NaN or infinity)")
    if arr.size and (arr.min() < -_PROB_TOLERANCE or arr.max() > 1 + _PROB_TOLERANCE):
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got values in [{arr.min():g}, {arr.max():g}]"
            " (apply softmax to logits first)"
        )
    return np.clip(arr, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# metrics


def confusion_matrix(targets: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` int64 counts, rows = true class, columns = predicted class."""
    k = check_positive_int(num_classes, "num_classes")
    t = _as_class_ids(targets, "targets", k)
    p = _as_class_ids(predictions, "predictions", k)
    if t.shape != p.shape:
        raise ValueError(f"targets and predictions must have the same length, got {t.size} and {p.size}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], num_bins: int = ECE_BINS
) -> float:
    """Expected calibration error: ``sum_b |B_b|/n * |accuracy(B_b) - mean confidence(B_b)|``.

    ``num_bins`` equal-width bins ``(lo, hi]`` over ``[0, 1]``; a confidence of exactly 0 goes to
    the first bin. ``correct`` holds booleans (or 0/1).
    """
    bins = check_positive_int(num_bins, "num_bins")
    try:
        conf = np.asarray(confidences, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"confidences must be numbers in [0, 1]: {exc}") from None
    if conf.ndim != 1:
        raise ValueError(f"confidences must be 1-D, got shape {conf.shape}")
    if conf.size == 0:
        raise ValueError("confidences is empty; ECE needs at least one prediction")
    conf = _check_probabilities(conf, "confidences")
    corr = np.asarray(correct)
    if corr.ndim != 1 or corr.size != conf.size:
        raise ValueError(
            f"correct must be 1-D with one entry per confidence ({conf.size}), got shape {corr.shape}"
        )
    if corr.dtype != bool:
        if not (np.issubdtype(corr.dtype, np.number) and np.isin(corr, (0, 1)).all()):
            raise ValueError("correct must hold booleans or 0/1 values")
        corr = corr.astype(bool)

    edges = np.linspace(0.0, 1.0, bins + 1)
    # Index of the bin (edges[i], edges[i+1]] holding each confidence; 0 lands in bin 0.
    idx = np.searchsorted(edges[1:-1], conf, side="left")
    conf_sum = np.bincount(idx, weights=conf, minlength=bins)
    corr_sum = np.bincount(idx, weights=corr.astype(np.float64), minlength=bins)
    # sum_b |B_b|/n * |acc_b - conf_b| == sum_b |correct_sum_b - conf_sum_b| / n
    return float(np.abs(corr_sum - conf_sum).sum() / conf.size)


def evaluate_scores(scores: np.ndarray, targets: Sequence[int], classes: Sequence[str]) -> EvaluationResult:
    """Top-1/top-5 accuracy, mean class accuracy, ECE, confusion matrix and per-class metrics.

    ``scores``: ``[N, K]`` class probabilities per video; ``targets``: ``N`` true class ids;
    ``classes``: the ``K`` class names, in class-id order.
    """
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise ValueError(f"classes must be a sequence of class names, got {type(classes).__name__}")
    labels = list(classes)
    for i, c in enumerate(labels):
        if not isinstance(c, str):
            raise ValueError(f"classes must hold strings, got {c!r} at position {i}")
    if len(set(labels)) != len(labels):
        dupes = sorted({c for c in labels if labels.count(c) > 1})
        raise ValueError(f"classes must be unique, duplicated: {dupes}")

    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D [num_videos, num_classes] array, got shape {s.shape}")
    if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)) or s.dtype == bool:
        raise ValueError(f"scores must be numeric, got dtype {s.dtype}")
    n, k = s.shape
    if n == 0:
        raise ValueError("scores has no rows; there is nothing to evaluate")
    if k == 0 or k != len(labels):
        raise ValueError(f"scores has {k} columns but classes names {len(labels)} classes")
    s = _check_probabilities(s.astype(np.float64), "scores")
    t = _as_class_ids(targets, "targets", k)
    if t.size != n:
        raise ValueError(f"targets must have one class id per row of scores ({n}), got {t.size}")

    # A stable sort on the negated scores ranks ties by class id, matching np.argmax.
    kk = min(TOP_K, k)
    ranked = np.argsort(-s, axis=1, kind="stable")[:, :kk]
    pred = ranked[:, 0]
    hit1 = pred == t
    hitk = (ranked == t[:, None]).any(axis=1)

    cm = confusion_matrix(t, pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)

    per_class = [
        ClassMetrics(
            label=labels[i],
            support=int(support[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
        )
        for i in range(k)
    ]
    present = support > 0  # n >= 1, so at least one class has videos
    confidences = s[np.arange(n), pred]
    return EvaluationResult(
        num_videos=int(n),
        top1=float(hit1.mean()),
        top5=float(hitk.mean()),
        mean_class_accuracy=float(recall[present].mean()),
        ece=expected_calibration_error(confidences, hit1, ECE_BINS),
        confusion=[[int(c) for c in row] for row in cm],
        per_class=per_class,
        classes=labels,
    )


def most_confused(result: EvaluationResult, top: int = 5) -> list[tuple[str, str, int]]:
    """The ``top`` largest off-diagonal counts as ``(true, predicted, count)``; ties by class id."""
    pairs = [
        (-count, i, j)
        for i, row in enumerate(result.confusion)
        for j, count in enumerate(row)
        if i != j and count > 0
    ]
    pairs.sort()
    return [(result.classes[i], result.classes[j], -neg) for neg, i, j in pairs[:top]]
