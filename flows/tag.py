"""Nightly tagging: list the archive, skip what this model version already tagged, tag the rest in
shards, record the run, and leave a summary a person can read in the Prefect UI."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from actionrec.tagging import TagSettings, default_lake, new_run_id, run_row
from tasks.tagging import discover_videos, plan_shards, publish_summary, resolve_model, tag_shard, write_run


@flow(name="tag", task_runner=ThreadPoolTaskRunner(max_workers=1))
def tag_flow(source: str, lake: str | None = None, model: str | None = None, top_k: int = 5, clips: int = 1,
             shard_size: int = 64, batch_size: int = 8, decode_workers: int = 2,
             device: str | None = None, decode_backend: str = "process",
             decode_timeout_s: float | None = 300.0, torch_compile: bool = False) -> dict[str, Any]:
    """Tag every new or changed video under ``source`` into ``lake``; returns the ``runs`` row."""
    log = get_run_logger()
    lake = lake or default_lake()
    settings = TagSettings(top_k=top_k, clips=clips, batch_size=batch_size, decode_workers=decode_workers,
                           device=device, decode_backend=decode_backend, decode_timeout_s=decode_timeout_s,
                           torch_compile=torch_compile)
    started = datetime.now(timezone.utc)
    run_id, run_date = new_run_id(started), started.date()

    pinned = resolve_model(model, lake)
    videos = discover_videos(source)
    shards = plan_shards(lake, videos, pinned.version, shard_size)
    todo = sum(len(s) for s in shards)
    log.info("run %s: %d videos listed, %d to tag in %d shards with %s@%s", run_id, len(videos), todo,
             len(shards), pinned.name, pinned.version)

    futures = [tag_shard.submit(lake, run_id, run_date, i, shard, pinned, settings) for i, shard in enumerate(shards)]
    counts: Counter[str] = Counter()
    lost = 0
    for fut, shard in zip(futures, shards, strict=True):
        state = fut.wait() or fut.state
        if state.is_completed():
            counts.update(fut.result())
        else:  # a shard that died even after its retry: its videos stay untagged, the next run takes them
            lost += len(shard)
            log.error("shard lost after retries (%d videos will be retried next run): %s", len(shard), state.message)

    row = run_row(run_id=run_id, flow="tag", source=source, lake=lake, model=pinned, started_at=started,
                  listed=len(videos), skipped=len(videos) - todo, counts=counts)
    write_run(lake, row, run_date)
    publish_summary(lake, row)
    if lost:
        raise RuntimeError(f"{lost} videos were not tagged because their shard failed; rerun to take them")
    return row
