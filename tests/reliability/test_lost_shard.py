"""A shard lost after its retries (here: the store refuses that shard's file, as a bucket policy
would) ends the run with its own exit status, a ``runs`` row that says so, and one line on stderr;
the next run tags exactly the videos that were lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
from checkpoints import write_tiny_checkpoint
from faultproxy import FaultProxy

from actionrec.lake.query import query


def test_a_lost_shard_exits_3_says_so_and_the_rerun_takes_the_rest(prefect_api, s3_endpoint, media, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lost")
    for i in range(6):
        s3.upload_file(str(media["mp4" if i % 2 else "mkv"]), "lost", f"videos/v{i}.mp4")
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, "-m", "deployments.cli", "tag", "s3://lost/videos", "--lake", "s3://lost/lake", "--model",
           str(model), "--shard-size", "2", "--clips", "1", "--json"]
    with FaultProxy(s3_endpoint, fail_share=0.0, reset_share=0.0, deny_put="-00001.parquet") as proxy:
        first = subprocess.run([*cmd, "--s3-endpoint-url", proxy.url], capture_output=True, text=True, env=env,
                               timeout=600)
    assert first.returncode == 3, first.stderr[-3000:]
    assert len(first.stderr.strip().splitlines()) == 1 and "rerun to take them" in first.stderr
    row = json.loads(first.stdout.strip().splitlines()[-1])
    assert (row["status"], row["videos_lost"], row["ok"], row["videos_listed"]) == ("incomplete", 2, 4, 6)
    runs = query("s3://lost/lake", "SELECT status, videos_lost FROM runs")[1]
    assert runs == [("incomplete", 2)]

    rerun = subprocess.run([*cmd, "--s3-endpoint-url", s3_endpoint], capture_output=True, text=True, env=env,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert (again["status"], again["ok"], again["videos_skipped"]) == ("complete", 2, 4)
    per_video = query("s3://lost/lake", "SELECT video_uri, count(*) FROM predictions WHERE status = 'ok' GROUP BY 1")[1]
    assert len(per_video) == 6 and all(n == 1 for _, n in per_video)
