"""Tasks of the tag flow: thin wrappers over ``actionrec.pipelines.tagging``. I/O steps retry
what can heal; a shard is retried once as a whole (a bad video is already a row, not an exception)."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from actionrec.io.storage import VideoObject
from actionrec.lake.lake import Lake
from actionrec.models.refs import PinnedModel
from actionrec.pipelines import tagging
from actionrec.pipelines.settings import TagSettings
from tasks.policies import IO_RETRIES, TAGS, retry_if_transient


@task(name="resolve-model", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def resolve_model(model: str | None, lake: str, settings: TagSettings) -> PinnedModel:
    return tagging.resolve_model(model, lake, settings)


@task(name="discover-videos", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def discover_videos(source: str) -> list[VideoObject]:
    return tagging.discover(source)


@task(name="plan-shards", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def plan_shards(lake: str, videos: list[VideoObject], model: PinnedModel, shard_size: int,
                embeddings: bool = False) -> tagging.Plan:
    plan = tagging.plan(lake, videos, model, shard_size, embeddings=embeddings)
    for uri, reason in plan.damaged.items():
        get_run_logger().warning("skipped damaged lake file %s: %s", uri, reason)
    return plan


# One retry: a shard that died (worker lost, lake unreachable) is redone whole; its files have
# deterministic names, so the retry overwrites them instead of adding copies.
@task(name="tag-shard", task_run_name="tag-shard-{shard}", cache_policy=NO_CACHE, tags=[*TAGS, "inference"],
      retries=1, retry_delay_seconds=10, retry_condition_fn=retry_if_transient)
def tag_shard(lake: str, run_id: str, run_date: date, shard: int, videos: list[VideoObject],
              model: PinnedModel, settings: TagSettings) -> tagging.ShardResult:
    result = tagging.tag_shard(lake, run_id, run_date, shard, videos, model, settings)
    get_run_logger().info("shard %d: %d videos, %d ok, %d partial, %d failed in %.1f s", shard, result.videos,
                          result.ok, result.partial, result.failed, result.seconds)
    return result


@task(name="write-run", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def write_run(lake: str, row: dict[str, Any], run_date: date) -> str:
    return Lake(lake).write_run(row, run_date)


@task(name="publish-summary", cache_policy=NO_CACHE, tags=TAGS)
def publish_summary(lake: str, row: dict[str, Any], not_ok: list[tuple[str, str, str]]) -> str:
    """The run's summary (markdown) and, when some videos were not ok, a table of them with reasons."""
    markdown = tagging.summary_markdown(lake, row)
    create_markdown_artifact(markdown, key="tag-run-summary", description=f"tag run {row['run_id']}")
    if not_ok:
        create_table_artifact([{"video": u, "status": s, "reason": r} for u, s, r in not_ok], key="tag-failures",
                              description=f"videos not tagged ok in run {row['run_id']}")
    return markdown
