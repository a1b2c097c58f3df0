"""Retraining: read the labels, train a candidate, evaluate it and the champion on the same held-out
split with multi-clip testing, and promote the candidate only if it beats the champion."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from actionrec.data.labels import LabelRules
from actionrec.lake.lake import default_lake
from actionrec.pipelines.retraining import decide
from actionrec.pipelines.settings import RETRAIN_DEFAULTS as D
from actionrec.pipelines.settings import EvalSplit, RetrainSettings, WhenIncomparable
from flows.params import TrainOptions, retrain_run_name, train_config
from tasks.retraining import (
    check_labels,
    evaluate_candidate,
    evaluate_champion,
    promote,
    publish_summary,
    train_candidate,
)


@flow(name="retrain", flow_run_name=retrain_run_name)
def retrain_flow(labels: str, lake: str | None = None, model_name: str = D.model_name, init: str = D.init,
                 split: EvalSplit = D.split, clips: int = D.clips, margin: float = D.margin,
                 when_incomparable: WhenIncomparable = D.when_incomparable,
                 min_eval_videos: int = D.min_eval_videos, min_eval_classes: int = D.min_eval_classes,
                 train_options: TrainOptions | None = None,  # type: ignore[valid-type]
                 label_rules: LabelRules | None = None) -> dict[str, Any]:
    """``init``: "scratch", "champion" (fine-tune the current champion) or any model reference.
    ``train_options``: ``TrainConfig`` fields to change (arch, epochs, lr, optimizer...); unknown names
    are refused before any work starts. ``label_rules``: repairs of the label table opted into."""
    log = get_run_logger()
    lake = lake or default_lake()
    settings = RetrainSettings(model_name=model_name, init=init, split=split, clips=clips, margin=margin,
                               when_incomparable=when_incomparable, min_eval_videos=min_eval_videos,
                               min_eval_classes=min_eval_classes)
    config = train_config(train_options)
    rules = label_rules or LabelRules()
    table = check_labels(labels, settings, rules)
    log.info("labels %s: %d train / %d val / %d test videos, %d classes; training %s for %d epochs from %s",
             table["sha256"][:12], table["train"], table["val"], table["test"], len(table["classes"]), config.arch,
             config.epochs, init)
    version = train_candidate(labels, lake, model_name, config, init, rules)
    champion = evaluate_champion(lake, model_name, labels, split, clips, rules)
    candidate = evaluate_candidate(lake, model_name, version, labels, split, clips, champion.summary, rules)
    promoted, reason = decide(candidate, champion, settings)
    if promoted:
        promoted, reason = promote(lake, model_name, version, champion.version, reason,
                                   f"retrain flow run {flow_run.name or flow_run.id}")
    log.info("candidate %s: %s -> %s", version, reason, "promoted" if promoted else "not promoted")
    theirs = champion.summary
    summary = {"model_name": model_name, "candidate_version": version, "candidate_top1": candidate.top1,
               "candidate_top5": candidate.top5, "candidate_mean_class_accuracy": candidate.mean_class_accuracy,
               "champion_version": champion.version, "champion_top1": theirs.top1 if theirs else None,
               "champion_comparable": champion.incomparable is None, "promoted": promoted, "reason": reason,
               "split": split, "test_videos": candidate.num_videos, "report": candidate.report_uri}
    rows = [f"| candidate | `{version}` | {candidate.top1:.1%} | {candidate.top5:.1%} | "
            f"{candidate.mean_class_accuracy:.1%} |"]
    if theirs:
        rows.append(f"| champion | `{theirs.version}` | {theirs.top1:.1%} | {theirs.top5:.1%} | "
                    f"{theirs.mean_class_accuracy:.1%} |")
    publish_summary("\n".join([f"# Retrain `{model_name}`", "", f"**{'Promoted' if promoted else 'Not promoted'}**: "
                               f"{reason}.", "", "| | version | top-1 | top-5 | mean class acc |",
                               "|---|---|---:|---:|---:|", *rows, "", f"Evaluation report: {candidate.report_uri}"])
                    + "\n", candidate.report_uri, model_name, version)
    return summary
