"""Tasks of the retrain flow."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from actionrec import retraining
from actionrec.lake import Lake


@task(name="read-labels", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[2, 10, 30])
def read_labels(labels: str) -> dict[str, Any]:
    return retraining.label_summary(labels)


@task(name="train-candidate", cache_policy=NO_CACHE)
def train_candidate(labels: str, lake: str, model_name: str, config: dict[str, Any], init: str) -> str:
    return retraining.train_candidate(labels, lake, model_name, config, init)


@task(name="evaluate-champion", cache_policy=NO_CACHE)
def evaluate_champion(lake: str, model_name: str, labels: str, split: str, clips: int) -> retraining.EvalSummary | None:
    return retraining.evaluate_champion(lake, model_name, labels, split, clips)


@task(name="evaluate-candidate", cache_policy=NO_CACHE)
def evaluate_candidate(lake: str, model_name: str, version: str, labels: str, split: str, clips: int,
                       champion: retraining.EvalSummary | None) -> retraining.EvalSummary:
    return retraining.evaluate_version(lake, model_name, version, labels, split, clips, champion=champion)


@task(name="promote", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[2, 10, 30])
def promote(lake: str, model_name: str, version: str) -> None:
    lk = Lake(lake)
    lk.set_champion(model_name, version)
    lk.mark_promoted(model_name, version)


@task(name="publish-retrain-summary", cache_policy=NO_CACHE)
def publish_summary(markdown: str) -> None:
    create_markdown_artifact(markdown, key="retrain-summary", description="retrain run")
