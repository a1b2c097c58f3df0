"""Retraining: read the labels, train a candidate, evaluate it and the champion on the same held-out
split with multi-clip testing, and promote the candidate only if it beats the champion."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from actionrec.data.labels import LabelRules
from actionrec.lake.lake import default_lake
from actionrec.loop.labels import LAKE_LABELS
from actionrec.pipelines.retraining import decide
from actionrec.pipelines.settings import RETRAIN_DEFAULTS as D
from actionrec.pipelines.settings import (
    TRIGGER_DEFAULTS,
    EvalSplit,
    RetrainSettings,
    TriggerSettings,
    WhenIncomparable,
)
from flows.params import TrainOptions, retrain_run_name, train_config
from tasks.retraining import (
    check_labels,
    count_new_labels,
    evaluate_candidate,
    evaluate_champion,
    promote,
    publish_summary,
    resolve_labels,
    train_candidate,
)


@flow(name="retrain", flow_run_name=retrain_run_name)
def retrain_flow(labels: str, lake: str | None = None, model_name: str = D.model_name, init: str = D.init,
                 split: EvalSplit = D.split, clips: int = D.clips, margin: float = D.margin,
                 when_incomparable: WhenIncomparable = D.when_incomparable,
                 min_eval_videos: int = D.min_eval_videos, min_eval_classes: int = D.min_eval_classes,
                 train_options: TrainOptions | None = None,  # type: ignore[valid-type]
                 label_rules: LabelRules | None = None) -> dict[str, Any]:
    """``labels``: a label table (CSV or Parquet), or ``"lake"``: the lake's ``labels`` table (people's
    answers, resolved by ``actionrec.lake.query.LABEL_RULE``), read as an immutable snapshot.
    ``init``: "scratch", "champion" (fine-tune the current champion) or any model reference.
    ``train_options``: ``TrainConfig`` fields to change (arch, epochs, lr, optimizer...); unknown names
    are refused before any work starts. ``label_rules``: repairs of the label table opted into."""
    log = get_run_logger()
    lake = lake or default_lake()
    settings = RetrainSettings(model_name=model_name, init=init, split=split, clips=clips, margin=margin,
                               when_incomparable=when_incomparable, min_eval_videos=min_eval_videos,
                               min_eval_classes=min_eval_classes)
    config = train_config(train_options)
    rules = label_rules or LabelRules()
    labels = resolve_labels(labels, lake)
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


@flow(name="retrain-on-labels")
def retrain_on_labels_flow(lake: str | None = None, model_name: str = D.model_name,
                           min_new_labels: int = TRIGGER_DEFAULTS.min_new_labels, init: str = "champion",
                           split: EvalSplit = D.split, min_eval_videos: int = D.min_eval_videos,
                           when_incomparable: WhenIncomparable = D.when_incomparable,
                           train_options: TrainOptions | None = None,  # type: ignore[valid-type]
                           ) -> dict[str, Any]:
    """Retrain from the lake's labels once at least ``min_new_labels`` answers arrived since the latest
    candidate of ``model_name`` (fine-tuning the champion by default); otherwise do nothing and say so.
    When people named a class the champion does not know, the champion cannot be compared:
    ``when_incomparable`` decides, as in the retrain flow.
    Scheduled (see deployments/definitions.py) rather than event-triggered: the count lives in the lake,
    so it is exact whatever the import sizes, and needs no event store."""
    log = get_run_logger()
    lake = lake or default_lake()
    TriggerSettings(min_new_labels=min_new_labels)
    new, last = count_new_labels(lake, model_name)
    if new < min_new_labels:
        log.info("%d new answers since %s (%d needed): no retrain", new, last or "the start", min_new_labels)
        return {"triggered": False, "new_labels": new, "since_version": last, "min_new_labels": min_new_labels}
    log.info("%d new answers since %s: retraining %s from the lake's labels", new, last or "the start", model_name)
    summary = retrain_flow(labels=LAKE_LABELS, lake=lake, model_name=model_name, init=init, split=split,
                           min_eval_videos=min_eval_videos, when_incomparable=when_incomparable,
                           train_options=train_options)
    return {"triggered": True, "new_labels": new, "since_version": last, "min_new_labels": min_new_labels, **summary}
