"""Tasks of the tag flow. I/O steps retry with backoff; decoding and inference do not retry blindly
(a bad video is already a row with its reason, not an exception)."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from actionrec import tagging
from actionrec.lake import Lake
from actionrec.storage import VideoObject

IO_RETRIES = {"retries": 3, "retry_delay_seconds": [2, 10, 30]}


@task(name="resolve-model", cache_policy=NO_CACHE, **IO_RETRIES)
def resolve_model(model: str | None, lake: str) -> tagging.ModelRef:
    return tagging.resolve_model(model, lake)


@task(name="discover-videos", cache_policy=NO_CACHE, **IO_RETRIES)
def discover_videos(source: str) -> list[VideoObject]:
    return tagging.discover(source)


@task(name="plan-shards", cache_policy=NO_CACHE, **IO_RETRIES)
def plan_shards(lake: str, videos: list[VideoObject], model_version: str, shard_size: int) -> list[list[VideoObject]]:
    return tagging.plan_shards(videos, Lake(lake).done(model_version), shard_size)


# One retry: a shard that died (worker lost, lake unreachable) is redone whole; its files have
# deterministic names, so the retry overwrites them instead of adding copies.
@task(name="tag-shard", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10)
def tag_shard(lake: str, run_id: str, run_date: date, shard: int, videos: list[VideoObject],
              model: tagging.ModelRef, settings: tagging.TagSettings) -> dict[str, int]:
    return tagging.tag_shard(lake, run_id, run_date, shard, videos, model, settings)


@task(name="write-run", cache_policy=NO_CACHE, **IO_RETRIES)
def write_run(lake: str, row: dict[str, Any], run_date: date) -> str:
    return Lake(lake).write_run(row, run_date)


@task(name="publish-summary", cache_policy=NO_CACHE)
def publish_summary(lake: str, row: dict[str, Any]) -> str:
    markdown = tagging.summary_markdown(lake, row)
    create_markdown_artifact(markdown, key="tag-run-summary", description=f"tag run {row['run_id']}")
    return markdown
