"""Runs at the same time on one lake: the second of two tag runs waits for the first's lease and
tags nothing twice (a folder and S3); two retrain runs never lose a promotion (the champion moves
by compare-and-swap, and every promotion in the history was decided against the champion it
replaced)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import boto3
import pyarrow.parquet as pq
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.lake.query import query


def _running_tag_runs(lake: str) -> int:
    """Tag flow runs on this lake that the Prefect server sees running (they have started, and wait or work)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    running = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])))
    with get_client(sync_client=True) as client:
        return sum(r.parameters.get("lake") == lake for r in client.read_flow_runs(flow_run_filter=running))


def _two_runs(source: str, lake: str, model, env, n: int, extra: list[str]) -> list[dict]:
    """Two tag runs that certainly overlap: the test holds the lake's lease until both have started
    (both wait for it), then lets go; one takes it and tags, the other waits for that one."""
    from actionrec.lake.lease import Lease

    cmd = [sys.executable, "-m", "deployments.cli", "tag", source, "--lake", lake, "--model", str(model),
           "--shard-size", "1", "--clips", "1", "--lease-wait", "300", "--json", *extra]
    with Lease(lake, "tag", "the test", ttl_s=600):
        runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        deadline = time.monotonic() + 180
        while _running_tag_runs(lake) < 2:
            assert all(r.poll() is None for r in runs), "a run ended while the lake was busy"
            assert time.monotonic() < deadline, "the two runs did not start"
            time.sleep(0.5)
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[1][-2000:] for o in outs]
    rows = sorted((json.loads(o[0].strip().splitlines()[-1]) for o in outs), key=lambda r: r["ok"])
    assert [(r["ok"], r["videos_skipped"]) for r in rows] == [(0, n), (n, 0)]  # the second run found it all done
    latest = query(lake, "SELECT video_uri, count(*) FROM predictions WHERE status = 'ok' GROUP BY 1")[1]
    assert len(latest) == n and all(count == 1 for _, count in latest)  # never a video twice
    spans = query(lake, "SELECT started_at, finished_at FROM runs ORDER BY started_at")[1]
    assert spans[1][0] < spans[0][1], "the two runs overlapped"
    return rows


def test_two_tag_runs_on_one_lake_never_tag_a_video_twice(prefect_api, tmp_path):
    """Reported: two runs at once both tagged everything (160 rows for 80 videos). The second waits
    for the first's lease (--lease-wait), then finds everything done."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        write_indexed(src / f"v{i:02d}.mp4", 20 + i)
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    _two_runs(str(src), str(tmp_path / "lake"), model, env, 8, [])
    for f in (tmp_path / "lake").rglob("*.parquet"):
        pq.read_table(f)  # every file whole


def test_two_tag_runs_on_one_s3_lake_never_tag_a_video_twice(prefect_api, s3_endpoint, media, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="busy")
    for i in range(8):
        s3.upload_file(str(media["mp4" if i % 2 else "mkv"]), "busy", f"videos/v{i}.mp4")
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    _two_runs("s3://busy/videos", "s3://busy/lake", model, env, 8, ["--s3-endpoint-url", s3_endpoint])


def test_a_busy_lake_is_said_at_once(tmp_path, media, capsys):
    from actionrec.lake.lease import Lease
    from deployments.cli import main

    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    with Lease(tmp_path / "lake", "tag", "the nightly run", ttl_s=60):
        started = time.monotonic()
        assert main(["tag", str(media["mp4"]), "--lake", str(tmp_path / "lake"), "--model", str(model)]) == 3
    err = capsys.readouterr().err
    assert "being tagged by the nightly run" in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - started < 5


def test_two_retrains_at_once_keep_one_consistent_champion_history(prefect_api, tmp_path):
    from actionrec.data.synth import SynthConfig, write_dataset
    from actionrec.lake.lake import Lake

    labels = write_dataset(tmp_path / "data", SynthConfig(per_class=3, size=32, num_frames=16, val_fraction=0.35))
    lake = tmp_path / "lake"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    runs = [subprocess.Popen([sys.executable, "-m", "deployments.cli", "retrain", "--labels", str(labels), "--lake",
                              str(lake), "--epochs", "1", "--seed", str(seed), "--split", "val", "--clips", "1", "--json",
                              "--min-eval-videos", "4"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[1][-2000:] for o in outs]
    summaries = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    history = Lake(lake).history("actionrec")
    assert history and history[0].previous is None
    for before, after in zip(history, history[1:], strict=False):
        assert after.previous == before.version  # no promotion decided against a stale champion slipped in
    assert Lake(lake).champion("actionrec") == history[-1].version
    promoted = {s["candidate_version"] for s in summaries if s["promoted"]}
    assert promoted == {e.version for e in history}
    for s in summaries:
        if not s["promoted"] and s["champion_version"] is None:
            assert "changed" in s["reason"]  # lost the race: told so, not silently overwritten
