"""Kill a real tag run with SIGKILL mid-way, run it again: every video exactly once, nothing lost,
no ok row duplicated, and no reader ever sees a half-written Parquet file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pytest
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.lake.query import query

N = 20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("m") / "model.pt", ["a", "b"])


def _watch(lake, stop, problems, seen):
    """Open every Parquet file that becomes visible, again and again, while the run writes."""
    while not stop.is_set():
        for f in lake.rglob("*.parquet"):
            try:
                pq.read_table(f)
                seen.add(f.name)
            except FileNotFoundError:
                pass
            except Exception as e:  # a half-written file would land here
                problems.append(f"{f}: {e}")
        time.sleep(0.01)


def test_sigkill_then_rerun_loses_and_duplicates_nothing(prefect_api, model, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(N):
        write_indexed(src / f"v{i:03d}.mp4", 20 + i % 7)
    lake = tmp_path / "lake"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, "-m", "deployments.cli", "tag", str(src), "--lake", str(lake), "--model", str(model),
           "--shard-size", "1"]
    stop, problems, seen = threading.Event(), [], set()
    watcher = threading.Thread(target=_watch, args=(lake, stop, problems, seen), daemon=True)
    watcher.start()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((lake / "predictions").rglob("*.parquet"))) < 5:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its decode workers, no clean-up
    proc.wait(timeout=30)
    killed_with = len(list((lake / "predictions").rglob("*.parquet")))
    assert 0 < killed_with < N, "the run must be killed mid-way for this test to mean anything"

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    stop.set()
    watcher.join(timeout=10)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not problems, problems

    latest = query(str(lake), "SELECT video_uri, status FROM latest_predictions")[1]
    assert len(latest) == N and {s for _, s in latest} == {"ok"}
    per_video = query(str(lake), "SELECT video_uri, count(*) FROM predictions WHERE status = 'ok' GROUP BY 1")[1]
    assert len(per_video) == N and all(n == 1 for _, n in per_video)  # killed-run rows kept, none redone
    runs = query(str(lake), "SELECT videos_listed, videos_skipped, ok FROM runs")[1]
    assert runs == [(N, killed_with, N - killed_with)]  # the killed run wrote no runs row
