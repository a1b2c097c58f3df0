"""Runs at the same time on one lake: two tag runs corrupt none of each other's files and leave every
video one current row; two retrain runs never lose a promotion (the champion moves by
compare-and-swap, and every promotion in the history was decided against the champion it replaced)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.lake.query import query

N = 40


def test_two_runs_at_once(prefect_api, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(N):
        write_indexed(src / f"v{i:02d}.mp4", 20 + i)
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    lake = tmp_path / "lake"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, "-m", "deployments.cli", "tag", str(src), "--lake", str(lake), "--model", str(model),
           "--shard-size", "1"]
    # One shard per video makes each run last several seconds, far longer than the two processes'
    # start-up skew, so they overlap (asserted below).
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[1][-2000:] for o in outs]
    files = list(lake.rglob("*.parquet"))
    for f in files:
        pq.read_table(f)  # every file whole
    spans = query(str(lake), "SELECT run_id, started_at, finished_at FROM runs ORDER BY started_at")[1]
    run_ids = {r[0] for r in spans}
    assert len(run_ids) == 2
    (_, a_start, a_end), (_, b_start, b_end) = spans
    assert b_start < a_end, "the two runs must overlap for this test to mean anything"
    latest = query(str(lake), "SELECT video_uri, status FROM latest_predictions")[1]
    assert len(latest) == N and {s for _, s in latest} == {"ok"}
    per_run = query(str(lake), "SELECT run_id, count(*) FROM predictions GROUP BY 1")[1]
    assert sum(n for _, n in per_run) <= 2 * N  # at most one row per (run, video): no shard written twice
    assert all(run in run_ids for run, _ in per_run)


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
