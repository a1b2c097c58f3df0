"""The retraining pipeline's steps: train a candidate, evaluate it and the champion on the same
split, and promote only a candidate that beats the champion by a margin.

The champion's evaluation has three outcomes, kept apart on purpose: a score; "not comparable"
(it knows other classes than the labels: a stated outcome with an explicit policy,
``RetrainSettings.when_incomparable``); or an error (storage outage, unreadable checkpoint), which
fails the step so that it is retried or the run fails. An error never reads as "no champion".
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from actionrec.data.labels import NO_REPAIRS, LabelRules, LabelTable, read_labels
from actionrec.errors import ConcurrentUpdateError, ConfigError
from actionrec.evaluation.evaluate import Evaluation, evaluate_model, write_evaluation
from actionrec.evaluation.report import per_class_table
from actionrec.lake.lake import Lake
from actionrec.models.card import card_path, file_version
from actionrec.models.checkpoint import LoadedModel
from actionrec.models.refs import load_model
from actionrec.pipelines.settings import RetrainSettings
from actionrec.training.config import TrainConfig
from actionrec.training.loop import EpochLog, train


def check_labels(labels: str, settings: RetrainSettings, rules: LabelRules = NO_REPAIRS) -> dict[str, Any]:
    """Read the table and refuse, before any training, what could only end in a degenerate model or
    a promotion decided on too little: one class, or an evaluation split too small to compare on."""
    table = read_labels(labels, rules=rules)
    train_classes = {r.label for r in table.split("train")}
    if len(train_classes) < 2:
        raise ConfigError(f"labels: {labels}: the train split has {len(train_classes)} class(es) "
                          f"({', '.join(sorted(train_classes)) or 'none'}); a classifier needs at least two")
    held = table.split(settings.split)
    held_classes = {r.label for r in held}
    if len(held) < settings.min_eval_videos or len(held_classes) < settings.min_eval_classes:
        raise ConfigError(f"labels: {labels}: the {settings.split} split has {len(held)} videos of "
                          f"{len(held_classes)} classes; comparing with the champion needs at least "
                          f"{settings.min_eval_videos} videos of {settings.min_eval_classes} classes "
                          "(min_eval_videos, min_eval_classes)")
    return {"sha256": table.sha256, "classes": list(table.classes),
            **{split: len(table.split(split)) for split in ("train", "val", "test")}}


def labels_waiting(lake: str, model_name: str) -> tuple[int, str | None]:
    """(answers imported into the lake's labels since the latest version of ``model_name`` was trained,
    that version or None): what the retrain trigger weighs."""
    from actionrec.loop.labels import new_since

    lk = Lake(lake).require()
    versions = lk.versions(model_name)
    last = versions[-1] if versions else None
    created = (lk.card(model_name, last) or {}).get("created_at") if last else None
    since = datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
    return new_since(lake, since), last


def initial_model(init: str, lake: str, model_name: str) -> LoadedModel | None:
    """What training starts from: nothing ("scratch"), the champion ("champion"; scratch when there is
    none yet) or any model reference."""
    if init == "scratch":
        return None
    lk = Lake(lake)
    if init == "champion":
        version = lk.champion(model_name)
        return load_model(f"{model_name}@{version}", lake=lake) if version else None
    return load_model(init, lake=lake)


def train_candidate(labels: str, lake: str, model_name: str, config: TrainConfig, init: str = "scratch",
                    progress: bool = False, on_epoch: Callable[[EpochLog], None] | None = None,
                    rules: LabelRules = NO_REPAIRS) -> str:
    """Train, register the checkpoint in the lake (immutable), return its version."""
    table = read_labels(labels, rules=rules)
    start = initial_model(init, lake, model_name)
    with tempfile.TemporaryDirectory(prefix="actionrec-train-") as tmp:
        out = Path(tmp) / "model.pt"
        train(config, table, init=start, out=out, progress=progress, model_name=model_name, on_epoch=on_epoch)
        card = json.loads(card_path(out).read_text())
        return Lake(lake).register_model(model_name, out, file_version(out), card)


@dataclass(frozen=True)
class EvalSummary:
    version: str
    top1: float
    top5: float
    mean_class_accuracy: float
    ece: float
    num_videos: int
    report_uri: str | None = None


@dataclass(frozen=True)
class ChampionCheck:
    """The champion against the candidate's split: ``summary`` when it could be scored, else why not
    (``version`` None: there is no champion; ``incomparable``: it knows other classes)."""

    version: str | None
    summary: EvalSummary | None = None
    incomparable: str | None = None


def _evaluate(model: LoadedModel, table: LabelTable, split: str, clips: int, progress: bool = False) -> Evaluation:
    rows = table.split(split)
    if not rows:
        raise ConfigError(f"labels: the {split!r} split of {table.source} is empty; nothing to evaluate on")
    return evaluate_model(model, rows, clips=clips, progress=progress)


def evaluate_version(lake: str, model_name: str, version: str, labels: str, split: str, clips: int, *,
                     champion: EvalSummary | None = None, rules: LabelRules = NO_REPAIRS) -> EvalSummary:
    """Multi-clip evaluation of one model version; writes metrics, report and picture to the lake."""
    lk = Lake(lake)
    table = read_labels(labels, rules=rules)
    model = load_model(f"{model_name}@{version}", lake=lake)
    ev = _evaluate(model, table, split, clips)
    r = ev.result
    summary = EvalSummary(version, r.top1, r.top5, r.mean_class_accuracy, r.ece, r.num_videos,
                          lk.evaluation_uri(model_name, version, "report.md"))
    record_evaluation(lk, model_name, summary, ev, table.sha256, split, champion=champion, model=model)
    return summary


def record_evaluation(lk: Lake, model_name: str, summary: EvalSummary, ev: Evaluation, labels_sha256: str,
                      split: str, *, champion: EvalSummary | None, model: LoadedModel) -> None:
    with tempfile.TemporaryDirectory(prefix="actionrec-eval-") as tmp:
        extra = {"labels_sha256": labels_sha256}
        if champion is not None:
            extra.update(champion_version=champion.version, champion_top1=f"{champion.top1:.4f}")
        out = write_evaluation(ev, tmp, model=model, split=split, extra=extra)
        row = {"model_name": model_name, "model_version": summary.version, "labels_sha256": labels_sha256,
               "split": split, "num_videos": summary.num_videos, "clips_per_video": ev.clips_per_video,
               "top1": summary.top1, "top5": summary.top5, "mean_class_accuracy": summary.mean_class_accuracy,
               "ece": summary.ece, "created_at": datetime.now(timezone.utc), "promoted": False,
               "champion_version": champion.version if champion else None,
               "champion_top1": champion.top1 if champion else None}
        lk.write_evaluation(model_name, summary.version, row, per_class_table(ev.result),
                            {"report.md": out / "report.md", "confusion.png": out / "confusion.png"})


def evaluate_champion(lake: str, model_name: str, labels: str, split: str, clips: int,
                      rules: LabelRules = NO_REPAIRS) -> ChampionCheck:
    """The champion scored on the candidate's split. Errors (an outage, an unreadable checkpoint)
    propagate: the caller retries or fails, and never promotes because of them."""
    version = Lake(lake).champion(model_name)
    if version is None:
        return ChampionCheck(None)
    table = read_labels(labels, rules=rules)
    model = load_model(f"{model_name}@{version}", lake=lake)
    if set(table.classes) != set(model.classes):
        missing = sorted(set(table.classes) - set(model.classes))
        extra = sorted(set(model.classes) - set(table.classes))
        why = "; ".join(part for part in (
            f"the labels have classes it does not know: {', '.join(missing)}" if missing else "",
            f"it knows classes the labels lack: {', '.join(extra)}" if extra else "") if part)
        return ChampionCheck(version, incomparable=why)
    ev = _evaluate(model, table, split, clips)
    r = ev.result
    return ChampionCheck(version, EvalSummary(version, r.top1, r.top5, r.mean_class_accuracy, r.ece, r.num_videos))


def decide(candidate: EvalSummary, champion: ChampionCheck, settings: RetrainSettings) -> tuple[bool, str]:
    """Promote when there is no champion, or the candidate's top-1 beats it by more than the margin;
    an incomparable champion follows ``settings.when_incomparable``."""
    margin = settings.margin
    if candidate.num_videos < settings.min_eval_videos:
        return False, (f"only {candidate.num_videos} videos could be evaluated, fewer than min_eval_videos="
                       f"{settings.min_eval_videos}")
    if champion.version is None:
        return True, "no champion yet"
    if candidate.version == champion.version:
        return False, "the candidate is the champion (same weights)"
    if champion.incomparable is not None:
        promote = settings.when_incomparable == "promote"
        return promote, (f"the champion {champion.version} cannot be compared ({champion.incomparable}); "
                         f"policy when_incomparable={settings.when_incomparable}")
    assert champion.summary is not None
    theirs = champion.summary.top1
    if candidate.top1 > theirs + margin:
        return True, f"top-1 {candidate.top1:.3f} beats the champion's {theirs:.3f} by more than {margin:.3f}"
    return False, f"top-1 {candidate.top1:.3f} does not beat the champion's {theirs:.3f} by more than {margin:.3f}"


def promote(lake: str, model_name: str, version: str, *, expected: str | None, reason: str,
            by: str | None = None) -> tuple[bool, str]:
    """Make ``version`` the champion if ``expected`` is still the champion (the one the decision was
    made against). Returns (promoted, reason)."""
    lk = Lake(lake)
    try:
        lk.promote(model_name, version, reason=reason, by=by, expected=expected)
    except ConcurrentUpdateError as e:
        return False, f"not promoted: {e}; rerun to compare against the new champion"
    lk.mark_promoted(model_name, version)
    return True, reason
