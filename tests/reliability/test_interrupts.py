"""Ctrl-C (SIGINT to the whole process group, what a terminal sends) and SIGTERM end a tag run
within seconds, with exit 130 or 143, every finished shard whole, and nothing left running: no
decode worker, no temporary Prefect server. The rerun tags each remaining video exactly once.

Reported: Ctrl-C took 65-155 s and ended with exit 1 and connection-refused tracebacks (the
temporary server died with the group and the run kept retrying to report to it); SIGTERM left the
temporary server listening."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pyarrow.parquet as pq
import pytest
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.lake.query import query

N = 16


@pytest.mark.parametrize("sig,to_group,status", [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)])
def test_a_signal_ends_the_run_in_seconds_and_leaves_nothing_behind(prefect_api, tmp_path, sig, to_group, status):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(N):
        write_indexed(src / f"v{i:02d}.mp4", 20 + i % 7)
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    lake = tmp_path / "lake"
    cmd = [sys.executable, "-m", "deployments.cli", "tag", str(src), "--lake", str(lake), "--model", str(model),
           "--shard-size", "1", "--clips", "1"]
    own_server = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # the run starts its own
    run = subprocess.Popen(cmd, env=own_server, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and run.poll() is None and len(list((lake / "predictions").rglob("*.parquet"))) < 3:
        time.sleep(0.05)
    started = [p for p in psutil.Process(run.pid).children(recursive=True)]
    ports = [c.laddr.port for p in started if p.is_running() for c in p.net_connections("tcp")
             if c.status == psutil.CONN_LISTEN]
    assert started and ports, "the run must be mid-way, with its workers and server, for this test to mean anything"
    signalled = time.monotonic()
    os.killpg(run.pid, sig) if to_group else run.send_signal(sig)
    _, err = run.communicate(timeout=120)
    assert run.returncode == status, err[-2000:]
    assert time.monotonic() - signalled < 10
    assert err.strip().splitlines() == [err.strip().splitlines()[0]] and "rerun takes the rest" in err
    time.sleep(0.5)
    assert not [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listening"
    finished = list((lake / "predictions").rglob("*.parquet"))
    assert 0 < len(finished) < N
    for f in finished:
        pq.read_table(f)  # whole

    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    rerun = subprocess.run([*cmd[:-4], "--shard-size", "10", "--json"], env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    per_video = query(str(lake), "SELECT video_uri, count(*) FROM predictions WHERE status = 'ok' GROUP BY 1")[1]
    assert len(per_video) == N and all(n == 1 for _, n in per_video)
