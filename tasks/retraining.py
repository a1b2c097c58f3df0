"""Tasks of the retrain flow: thin wrappers over ``actionrec.pipelines.retraining``."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from actionrec.data.labels import LabelRules
from actionrec.pipelines import retraining
from actionrec.pipelines.settings import RetrainSettings
from actionrec.training.config import TrainConfig
from actionrec.training.loop import EpochLog
from tasks.policies import IO_RETRIES, TAGS, retry_if_transient

EVAL_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": [10, 60], "retry_condition_fn": retry_if_transient}


@task(name="resolve-labels", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def resolve_labels(labels: str, lake: str) -> str:
    """The label table to read: the given one, or a snapshot of the lake's labels for ``lake``."""
    from actionrec.loop.labels import label_source

    return label_source(labels, lake)


@task(name="count-new-labels", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def count_new_labels(lake: str, model_name: str) -> tuple[int, str | None]:
    return retraining.labels_waiting(lake, model_name)


@task(name="check-labels", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def check_labels(labels: str, settings: RetrainSettings, rules: LabelRules) -> dict[str, Any]:
    return retraining.check_labels(labels, settings, rules)


@task(name="train-candidate", cache_policy=NO_CACHE, tags=[*TAGS, "training"])
def train_candidate(labels: str, lake: str, model_name: str, config: TrainConfig, init: str,
                    rules: LabelRules) -> str:
    log = get_run_logger()

    def progress(e: EpochLog) -> None:
        val = f"{e.val_top1:.3f}" if e.val_top1 is not None else "-"
        log.info("epoch %d/%d: loss %.4f, train top-1 %.3f, val top-1 %s, lr %.2e, %.1f s", e.epoch, config.epochs,
                 e.train_loss, e.train_top1, val, e.lr, e.seconds)

    return retraining.train_candidate(labels, lake, model_name, config, init, on_epoch=progress, rules=rules)


@task(name="evaluate-champion", cache_policy=NO_CACHE, tags=[*TAGS, "evaluation"], **EVAL_RETRIES)
def evaluate_champion(lake: str, model_name: str, labels: str, split: str, clips: int,
                      rules: LabelRules) -> retraining.ChampionCheck:
    return retraining.evaluate_champion(lake, model_name, labels, split, clips, rules)


@task(name="evaluate-candidate", cache_policy=NO_CACHE, tags=[*TAGS, "evaluation"], **EVAL_RETRIES)
def evaluate_candidate(lake: str, model_name: str, version: str, labels: str, split: str, clips: int,
                       champion: retraining.EvalSummary | None, rules: LabelRules) -> retraining.EvalSummary:
    return retraining.evaluate_version(lake, model_name, version, labels, split, clips, champion=champion,
                                       rules=rules)


@task(name="promote", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def promote(lake: str, model_name: str, version: str, expected: str | None, reason: str, by: str) -> tuple[bool, str]:
    return retraining.promote(lake, model_name, version, expected=expected, reason=reason, by=by)


@task(name="publish-retrain-summary", cache_policy=NO_CACHE, tags=TAGS)
def publish_summary(markdown: str, report_uri: str | None, model_name: str, version: str) -> None:
    create_markdown_artifact(markdown, key="retrain-summary", description="retrain run")
    if report_uri:
        link = report_uri if "://" in report_uri else f"file://{report_uri}"
        create_link_artifact(link, link_text=f"evaluation report of {model_name}@{version}",
                             key="evaluation-report", description="the candidate's evaluation report")
