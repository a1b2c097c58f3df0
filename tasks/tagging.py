"""Tasks of the tag flow: thin wrappers over ``actionrec.pipelines.tagging``. I/O steps retry
what can heal; a shard is retried once as a whole (a bad video is already a row, not an exception)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from actionrec.io.storage import VideoObject
from actionrec.lake.lake import Lake
from actionrec.loop.drift import Drift
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


@task(name="queue-for-labeling", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def queue_for_labeling(lake: str, run_id: str, run_date: date, size: int, per_label: int) -> int:
    """The run's labeling queue: the videos most worth a person's time (see actionrec.loop.queue)."""
    from actionrec.loop.queue import queue_run

    queued = queue_run(lake, run_id, run_date, size=size, per_label=per_label)
    if queued.num_rows:
        get_run_logger().info("queued %d videos for labeling (actionrec label export)", queued.num_rows)
    return queued.num_rows


@task(name="write-run", cache_policy=NO_CACHE, tags=TAGS, **IO_RETRIES)
def write_run(lake: str, row: dict[str, Any], run_date: date) -> str:
    return Lake(lake).write_run(row, run_date)


@task(name="publish-summary", cache_policy=NO_CACHE, tags=TAGS)
def publish_summary(lake: str, row: dict[str, Any], not_ok: list[tuple[str, str, str]],
                    drift: Drift | None = None) -> str:
    """The run's summary (markdown, with its drift section); when some videos were not ok, a table of
    them with reasons; when the run drifted, the labels whose share changed most ("tag-drift")."""
    markdown = tagging.summary_markdown(lake, row)
    create_markdown_artifact(markdown, key="tag-run-summary", description=f"tag run {row['run_id']}")
    if not_ok:
        create_table_artifact([{"video": u, "status": s, "reason": r} for u, s, r in not_ok], key="tag-failures",
                              description=f"videos not tagged ok in run {row['run_id']}")
    if drift is not None and drift.flag:
        create_markdown_artifact(drift.markdown(), key="tag-drift",
                                 description=f"tag run {row['run_id']}: its label or confidence mix shifted")
    return markdown


@task(name="check-drift", cache_policy=NO_CACHE, tags=TAGS)
def check_drift(lake: str, run_id: str, model_name: str, started_at: datetime, settings: TagSettings) -> Drift:
    """This run's label and confidence mix against the runs before it; a lake that cannot be read
    leaves the drift not computed (a warning, and the reason in the row), never a failed run."""
    drift = tagging.check_drift(lake, run_id, model_name, started_at, settings)
    log = get_run_logger()
    if drift.error:
        log.warning("drift not computed (the run goes on): %s", drift.error)
    elif drift.flag:
        log.warning("drift: %s", drift.reason)
    else:
        log.info("drift: %s", drift.reason)
    return drift


# One quick retry for a storage blip; the run row is already written, so nothing waits long on a report.
@task(name="write-report", cache_policy=NO_CACHE, tags=TAGS, retries=1, retry_delay_seconds=2,
      retry_condition_fn=retry_if_transient)
def write_report(lake: str, run_id: str) -> str:
    """The run's HTML report beside it (``reports/run_date=.../<run_id>.html``), linked as the
    ``tag-report`` artifact. Thumbnails decode one frame per video, within the report's time budget."""
    from actionrec.report import write_report as write

    uri = write(lake, run_id)
    link = uri if "://" in uri else Path(uri).resolve().as_uri()
    create_link_artifact(link, link_text=f"report of tag run {run_id}",
                         key="tag-report", description=f"the report of tag run {run_id}")
    get_run_logger().info("report: %s", uri)
    return uri
