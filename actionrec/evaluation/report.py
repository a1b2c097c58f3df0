"""What an evaluation leaves for people and for the lake: a Markdown report, a confusion-matrix
picture (PNG, written atomically) and the per-class table (pyarrow). matplotlib and pyarrow are
imported only inside the functions that need them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from actionrec.evaluation.metrics import ECE_BINS, TOP_K, EvaluationResult, check_positive_int, most_confused
from actionrec.io.atomic import atomic_path

if TYPE_CHECKING:
    import pyarrow


# --------------------------------------------------------------------------------------------------
# picture


def plot_confusion(
    result: EvaluationResult, path: str | Path, normalize: bool = True, title: str | None = None
) -> Path:
    """Draw the confusion matrix as a PNG at ``path`` and return it.

    ``normalize`` divides each row by its class's support (rows of absent classes stay 0). The
    picture is written under a temporary name in the same folder and moved into place, so
    ``path`` is either the whole new picture or untouched. Rendering goes through an Agg canvas
    attached to a standalone Figure: pyplot is not imported and the process-wide backend is left
    as it is (switching it would close the caller's open figures).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    cm = np.asarray(result.confusion, dtype=np.float64).reshape(len(result.classes), len(result.classes))
    k = cm.shape[0]
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        values = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        vmax = 1.0
    else:
        values = cm
        vmax = max(float(cm.max()), 1.0)
    if title is None:
        title = "Confusion matrix (normalized by true class)" if normalize else "Confusion matrix (counts)"

    side = min(max(4.0, 0.45 * k + 2.5), 60.0)  # inches; the cap keeps huge label sets under Agg's limits
    font = max(3.0, min(10.0, 280.0 / max(k, 1)))
    fig = Figure(figsize=(side + 1.0, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    try:
        ax = fig.add_subplot()
        image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(result.classes, rotation=45, ha="right", rotation_mode="anchor", fontsize=font)
        ax.set_yticklabels(result.classes, fontsize=font)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(title)
        if k <= 40:  # beyond that the numbers would not fit their cells
            for i in range(k):
                for j in range(k):
                    v = values[i, j]
                    text = f"{v:.2f}" if normalize else str(int(v))
                    color = "white" if v > vmax / 2 else "black"
                    ax.text(j, i, text, ha="center", va="center", color=color, fontsize=font * 0.8)

        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        fig.clear()
    return out


# --------------------------------------------------------------------------------------------------
# report


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _format_extra(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return str(value)


def render_report(
    result: EvaluationResult,
    *,
    model_name: str,
    model_version: str,
    split: str,
    clips_per_video: int,
    extra: dict | None = None,
    confusion_png: str | None = None,
) -> str:
    """A Markdown evaluation report: summary, per-class table, most confused pairs, picture, extras."""
    clips = check_positive_int(clips_per_video, "clips_per_video")
    k = len(result.classes)
    top_label = "Top-5 accuracy" if k >= TOP_K else f"Top-5 accuracy (k={k}: only {k} classes)"
    lines = [
        f"# Evaluation: {model_name} {model_version} on {split}",
        "",
        "## Summary",
        "",
        "| Metric | Value |",
        "| --- | --- |",
        f"| Model | {_cell(model_name)} |",
        f"| Version | {_cell(model_version)} |",
        f"| Split | {_cell(split)} |",
        f"| Videos | {result.num_videos} |",
        f"| Clips per video | {clips} |",
        f"| Top-1 accuracy | {_pct(result.top1)} |",
        f"| {top_label} | {_pct(result.top5)} |",
        f"| Mean class accuracy | {_pct(result.mean_class_accuracy)} |",
        f"| ECE ({ECE_BINS} bins) | {result.ece:.3f} |",
        "",
        "## Per class",
        "",
        "| Class | Support | Precision | Recall | F1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for m in result.per_class:
        lines.append(f"| {_cell(m.label)} | {m.support} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} |")

    lines += ["", "## Most confused pairs", ""]
    pairs = most_confused(result, 5)
    if pairs:
        lines += [f"- {true} -> {pred}: {count}" for true, pred, count in pairs]
    else:
        lines.append("No confusions: every video was predicted as its true class.")

    if confusion_png:
        target = f"<{confusion_png}>" if any(ch.isspace() for ch in confusion_png) else confusion_png
        lines += ["", "## Confusion matrix", "", f"![Confusion matrix]({target})"]

    if extra:
        lines += ["", "## Details", "", "| Key | Value |", "| --- | --- |"]
        lines += [f"| {_cell(key)} | {_cell(_format_extra(value))} |" for key, value in extra.items()]

    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# table


def per_class_table(result: EvaluationResult) -> pyarrow.Table:
    """Per-class metrics as the lake's ``per_class`` table: class, support, precision, recall, f1."""
    import pyarrow as pa

    from actionrec.lake.schema import PER_CLASS

    rows = [{"class": m.label, "support": m.support, "precision": m.precision, "recall": m.recall, "f1": m.f1}
            for m in result.per_class]
    return pa.Table.from_pylist(rows, PER_CLASS)
