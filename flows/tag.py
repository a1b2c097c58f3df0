"""Nightly tagging: take the lake's lease, pin the model, list the archive, skip what this model
already tagged, tag the rest in shards, compare what was tagged with the runs before (drift),
record the run, and leave a summary a person can read in the Prefect UI."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from actionrec.engines.choice import Engine, Precision
from actionrec.errors import RunIncompleteError
from actionrec.inference.settings import DecodeBackend
from actionrec.lake.lake import default_lake
from actionrec.lake.lease import Lease
from actionrec.pipelines import tagging
from actionrec.pipelines.settings import TAG_DEFAULTS as D
from actionrec.pipelines.settings import TagSettings
from actionrec.pipelines.tagging import new_run_id, run_row
from flows.params import tag_run_name
from tasks.tagging import (
    check_drift,
    discover_videos,
    plan_shards,
    publish_summary,
    queue_for_labeling,
    resolve_model,
    tag_shard,
    write_report,
    write_run,
)


@flow(name="tag", flow_run_name=tag_run_name, task_runner=ThreadPoolTaskRunner(max_workers=1))
def tag_flow(source: str, lake: str | None = None, model: str | None = None, top_k: int = D.top_k,
             clips: int = D.clips, every: float | None = D.every, crops: int = D.crops, batch_size: int = D.batch_size, decode_workers: int = D.decode_workers,
             device: str | None = D.device, decode_backend: DecodeBackend = D.decode_backend,
             decode_timeout_s: float | None = D.decode_timeout_s, torch_compile: bool = D.torch_compile,
             engine: Engine = D.engine, precision: Precision = D.precision,
             shard_size: int = D.shard_size, shard_timeout_s: float = D.shard_timeout_s,
             lease_ttl_s: float = D.lease_ttl_s, lease_wait_s: float = D.lease_wait_s,
             queue_size: int = D.queue_size, queue_per_label: int = D.queue_per_label,
             drift_window: int = D.drift_window, drift_threshold: float = D.drift_threshold,
             drift_min_videos: int = D.drift_min_videos, embeddings: bool = D.embeddings,
             segment_smoothing_s: float = D.segment_smoothing_s, segment_min_score: float = D.segment_min_score,
             segment_min_s: float = D.segment_min_s, shot_snap_s: float = D.shot_snap_s,
             progress: bool = False) -> dict[str, Any]:
    """Tag every new or changed video under ``source`` into ``lake`` with ``model`` (default: the lake's
    champion); returns the ``runs`` row. Only one tag run works on a lake at a time (its lease);
    raises ``RunIncompleteError`` (with that row) when a shard was lost after its retries: what was
    tagged is kept, and the next run takes the rest. With ``embeddings``, each tagged video's
    embedding goes to the lake's ``embeddings`` table too (``actionrec similar`` reads it)."""
    lake = lake or default_lake()
    settings = TagSettings(top_k=top_k, clips=clips, every=every, crops=crops, batch_size=batch_size, decode_workers=decode_workers,
                           device=device, decode_backend=decode_backend, decode_timeout_s=decode_timeout_s,
                           torch_compile=torch_compile, engine=engine, precision=precision, shard_size=shard_size, shard_timeout_s=shard_timeout_s,
                           lease_ttl_s=lease_ttl_s, lease_wait_s=lease_wait_s, queue_size=queue_size,
                           queue_per_label=queue_per_label, drift_window=drift_window,
                           drift_threshold=drift_threshold, drift_min_videos=drift_min_videos,
                           embeddings=embeddings, segment_smoothing_s=segment_smoothing_s,
                           segment_min_score=segment_min_score, segment_min_s=segment_min_s,
                           shot_snap_s=shot_snap_s)
    started = datetime.now(timezone.utc)
    run_id = new_run_id(started)
    with Lease(lake, "tag", f"tag run {run_id}", ttl_s=settings.lease_ttl_s, wait_s=settings.lease_wait_s):
        row = _tag(source, lake, model, settings, run_id, started, progress)
    if row["videos_lost"]:
        raise RunIncompleteError(f"{row['videos_lost']} videos were not tagged because their shard failed; rerun "
                                 f"to take them (run {run_id})", row)
    return row


def _tag(source: str, lake: str, model: str | None, settings: TagSettings, run_id: str, started: datetime,
         progress: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm

    log = get_run_logger()
    run_date = started.date()
    pinned = resolve_model(model, lake, settings)
    videos = discover_videos(source)
    planned = plan_shards(lake, videos, pinned, settings.shard_size, settings.embeddings)
    shards = planned.shards
    todo = sum(len(s) for s in shards)
    log.info("run %s: %d videos listed, %d to tag in %d shards with %s@%s (%s)", run_id, len(videos), todo,
             len(shards), pinned.name, pinned.version, tagging.engine_of(settings))

    futures = [tag_shard.submit(lake, run_id, run_date, i, shard, pinned, settings) for i, shard in enumerate(shards)]
    counts: Counter[str] = Counter()
    not_ok: list[tuple[str, str, str]] = []
    lost = 0
    with tqdm(total=todo, desc=f"tag {pinned.name}", unit="video", disable=not progress) as bar:
        for fut, shard in zip(futures, shards, strict=True):
            state = fut.wait() or fut.state
            if state.is_completed():
                done = fut.result()
                counts.update({"ok": done.ok, "partial": done.partial, "failed": done.failed})
                not_ok.extend(done.not_ok)
            else:  # a shard that died even after its retry: its videos stay untagged, the next run takes them
                lost += len(shard)
                log.error("shard lost after retries (%d videos will be retried next run): %s", len(shard),
                          state.message)
            bar.update(len(shard))

    drift = check_drift(lake, run_id, pinned.name, started, settings)
    row = run_row(run_id=run_id, flow="tag", source=source, lake=lake, model=pinned,
                  engine=tagging.engine_of(settings), started_at=started,
                  listed=len(videos), skipped=len(videos) - todo, counts=counts, lost=lost,
                  damaged=len(planned.damaged), drift=drift)
    queued = queue_for_labeling(lake, run_id, run_date, settings.queue_size, settings.queue_per_label,
                                return_state=True)
    if not queued.is_completed():  # the predictions are written: a lost queue must not lose the run's row
        log.error("the labeling queue of run %s could not be written: %s", run_id, queued.message)
    write_run(lake, row, run_date)
    publish_summary(lake, row, not_ok, drift)
    _report(lake, run_id)  # last: it shows what the steps before wrote
    return row


def _report(lake: str, run_id: str) -> None:
    """The run's report; one that cannot be written fails its own task (red in the UI) and logs a
    warning, never the run: the tagging it reports on is done and recorded."""
    state = write_report(lake, run_id, return_state=True)
    if not state.is_completed():
        get_run_logger().warning("run %s: the report was not written (%s); `actionrec report --run %s --out F` "
                                 "makes it later", run_id, state.message, run_id)
