"""The retraining pipeline's steps: train a candidate, evaluate it and the champion on the same
split, and promote only a candidate that beats the champion by a margin."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from actionrec.errors import ActionRecError, ConfigError
from actionrec.evaluation import evaluate_model, write_evaluation
from actionrec.labels import read_labels
from actionrec.lake import Lake
from actionrec.metrics import per_class_table
from actionrec.models.refs import load_model
from actionrec.training import TrainConfig, train

INIT_CHOICES = ("scratch", "champion")


def label_summary(labels: str) -> dict[str, Any]:
    table = read_labels(labels)
    return {"sha256": table.sha256, "classes": list(table.classes),
            **{split: len(table.split(split)) for split in ("train", "val", "test")}}


def train_candidate(labels: str, lake: str, model_name: str, config: dict[str, Any], init: str = "scratch",
                    progress: bool = False) -> str:
    """Train, register the checkpoint in the lake (immutable), return its version."""
    cfg = TrainConfig(**config)
    table = read_labels(labels)
    lk = Lake(lake)
    start = None
    if init == "champion":
        if lk.champion(model_name):
            start = lk.load_model(model_name)
    elif init != "scratch":
        start = load_model(init, lake=lake)
    with tempfile.TemporaryDirectory(prefix="actionrec-train-") as tmp:
        out = Path(tmp) / "model.pt"
        train(cfg, table, init=start, out=out, progress=progress, model_name=model_name)
        return lk.register_model(model_name, out)


@dataclass(frozen=True)
class EvalSummary:
    version: str
    top1: float
    top5: float
    mean_class_accuracy: float
    ece: float
    num_videos: int


def evaluate_version(lake: str, model_name: str, version: str, labels: str, split: str = "test", clips: int = 3,
                     *, promoted: bool = False, champion: EvalSummary | None = None, write: bool = True,
                     batch_size: int = 8, decode_workers: int = 2) -> EvalSummary:
    """Multi-clip evaluation of one model version; writes metrics, report and picture to the lake."""
    lk = Lake(lake)
    table = read_labels(labels)
    rows = table.split(split)
    if not rows:
        raise ConfigError(f"labels: the {split!r} split of {labels} is empty; nothing to evaluate on")
    model = lk.load_model(model_name, version)
    ev = evaluate_model(model, rows, clips=clips, batch_size=batch_size, decode_workers=decode_workers)
    r = ev.result
    summary = EvalSummary(version, r.top1, r.top5, r.mean_class_accuracy, r.ece, r.num_videos)
    if write:
        record_evaluation(lk, model_name, summary, ev, table.sha256, split, promoted=promoted, champion=champion,
                          model=model)
    return summary


def record_evaluation(lk: Lake, model_name: str, summary: EvalSummary, ev: Any, labels_sha256: str, split: str, *,
                      promoted: bool, champion: EvalSummary | None, model: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="actionrec-eval-") as tmp:
        extra = {"labels_sha256": labels_sha256}
        if champion is not None:
            extra.update(champion_version=champion.version, champion_top1=f"{champion.top1:.4f}")
        out = write_evaluation(ev, tmp, model=model, split=split, extra=extra)
        row = {"model_name": model_name, "model_version": summary.version, "labels_sha256": labels_sha256,
               "split": split, "num_videos": summary.num_videos, "clips_per_video": ev.clips_per_video,
               "top1": summary.top1, "top5": summary.top5, "mean_class_accuracy": summary.mean_class_accuracy,
               "ece": summary.ece, "created_at": datetime.now(timezone.utc), "promoted": promoted,
               "champion_version": champion.version if champion else None,
               "champion_top1": champion.top1 if champion else None}
        lk.write_evaluation(model_name, summary.version, row, per_class_table(ev.result),
                            {"report.md": out / "report.md", "confusion.png": out / "confusion.png"})


def should_promote(candidate: EvalSummary, champion: EvalSummary | None, margin: float) -> tuple[bool, str]:
    """Promote when there is no champion, or the candidate's top-1 beats it by more than ``margin``."""
    if champion is None:
        return True, "no champion yet"
    if candidate.version == champion.version:
        return False, "the candidate is the champion (same weights)"
    if candidate.top1 > champion.top1 + margin:
        return True, f"top-1 {candidate.top1:.3f} beats the champion's {champion.top1:.3f} by more than {margin:.3f}"
    return False, f"top-1 {candidate.top1:.3f} does not beat the champion's {champion.top1:.3f} by more than {margin:.3f}"


def evaluate_champion(lake: str, model_name: str, labels: str, split: str, clips: int) -> EvalSummary | None:
    """The champion on the candidate's split, or None when there is none or it cannot be compared."""
    version = Lake(lake).champion(model_name)
    if version is None:
        return None
    try:
        return evaluate_version(lake, model_name, version, labels, split, clips, write=False)
    except ActionRecError:
        return None  # e.g. the champion knows other classes: not comparable on this split
