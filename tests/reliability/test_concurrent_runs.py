"""Two tag runs on the same lake at the same time: neither corrupts the other's files, and every
video still has exactly one current row."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.lake.query import query


def test_two_runs_at_once(prefect_api, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        write_indexed(src / f"v{i:02d}.mp4", 20 + i)
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    lake = tmp_path / "lake"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, "-m", "deployments.cli", "tag", str(src), "--lake", str(lake), "--model", str(model),
           "--shard-size", "2"]
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[1][-2000:] for o in outs]
    files = list(lake.rglob("*.parquet"))
    for f in files:
        pq.read_table(f)  # every file whole
    run_ids = {r[0] for r in query(str(lake), "SELECT run_id FROM runs")[1]}
    assert len(run_ids) == 2
    latest = query(str(lake), "SELECT video_uri, status FROM latest_predictions")[1]
    assert len(latest) == 12 and {s for _, s in latest} == {"ok"}
    per_run = query(str(lake), "SELECT run_id, count(*) FROM predictions GROUP BY 1")[1]
    assert sum(n for _, n in per_run) <= 24  # at most one row per (run, video): no shard written twice
    assert all(run in run_ids for run, _ in per_run)
