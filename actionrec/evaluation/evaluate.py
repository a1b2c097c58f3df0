"""Evaluate a model on labeled videos with multi-clip testing; write metrics, report and picture."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.data.labels import LabeledVideo
from actionrec.errors import ConfigError, DataError
from actionrec.evaluation.metrics import EvaluationResult, evaluate_scores
from actionrec.evaluation.report import plot_confusion, render_report
from actionrec.inference.predictor import Predictor
from actionrec.inference.settings import DEFAULTS
from actionrec.io import atomic
from actionrec.models.checkpoint import LoadedModel


@dataclass
class Evaluation:
    result: EvaluationResult
    clips_per_video: int
    failed: list[tuple[str, str]]  # (uri, reason) of videos that could not be read
    crops_per_clip: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.summary(), "clips_per_video": self.clips_per_video, "crops_per_clip": self.crops_per_clip,
                "failed": len(self.failed)}


def evaluate_model(
    model: LoadedModel,
    rows: list[LabeledVideo],
    *,
    clips: int = DEFAULTS.clips,
    crops: int = DEFAULTS.crops,
    progress: bool = False,
    **settings: Any,
) -> Evaluation:
    """Softmax-averaged scores over ``clips`` clips (``crops`` crops each) per video, scored against the labels.
    ``settings`` are ``Predictor``'s (batch_size, decode_workers, device, ...)."""
    if not rows:
        raise ConfigError("nothing to evaluate: the selected split has no videos")
    unknown = sorted({r.label for r in rows} - set(model.classes))
    if unknown:
        raise ConfigError(f"labels not known to the model: {', '.join(unknown)}")
    ids = {c: i for i, c in enumerate(model.classes)}
    predictor = Predictor(model, **settings)
    preds = predictor.predict_all([r.uri for r in rows], top_k=1, clips=clips, crops=crops, progress=progress)
    scores, targets, failed = [], [], []
    for row, pred in zip(rows, preds, strict=True):
        if pred.probs is None:
            failed.append((row.uri, pred.error or "failed"))
            continue
        scores.append(pred.probs)
        targets.append(ids[row.label])
    if not scores:
        raise DataError(f"no labeled video could be read ({len(failed)} failed), first: {failed[0][0]}: "
                                f"{failed[0][1]}")
    result = evaluate_scores(np.stack(scores), targets, model.classes)
    return Evaluation(result, clips, failed, crops)


def write_evaluation(ev: Evaluation, out_dir: str | os.PathLike, *, model: LoadedModel, split: str,
                     extra: dict[str, Any] | None = None) -> Path:
    """``metrics.json``, ``confusion.png`` and ``report.md`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion(ev.result, out / "confusion.png", title=f"{model.name} {model.version} ({split})")
    info = {"failed_videos": len(ev.failed), **(extra or {})}
    report = render_report(ev.result, model_name=model.name, model_version=model.version, split=split,
                           clips_per_video=ev.clips_per_video, extra=info, confusion_png="confusion.png")
    if ev.failed:
        report += "\n## Videos that could not be read\n\n" + "\n".join(f"- `{u}`: {r}" for u, r in ev.failed) + "\n"
    atomic.write_text(out / "report.md", report)
    atomic.write_text(out / "metrics.json", json.dumps({**ev.to_dict(), **ev.result.to_dict()}, indent=2))
    return out
