"""S3 faults for real: a fault-injecting proxy in front of moto's server. Transient errors (503
SlowDown, dropped connections) are retried and the run succeeds; permanent ones (403, an object
deleted between listing and reading) become failed rows with their reason."""

from __future__ import annotations

import os

import boto3
from checkpoints import write_tiny_checkpoint
from faultproxy import FaultProxy

from actionrec.lake.query import query


def test_transient_faults_are_survived_and_permanent_ones_become_rows(prefect_api, s3_endpoint, media, tmp_path):
    from actionrec.io import s3 as s3mod
    from flows.tag import tag_flow

    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    direct = boto3.client("s3", endpoint_url=s3_endpoint)
    direct.create_bucket(Bucket="flaky")
    names = []
    for i in range(8):
        key = f"videos/ok_{i}.mp4"
        direct.upload_file(str(media["mp4" if i % 2 else "avi"]), "flaky", key)
        names.append(key)
    direct.upload_file(str(media["mp4"]), "flaky", "videos/forbidden.mp4")
    direct.upload_file(str(media["mp4"]), "flaky", "videos/vanish.mp4")
    with FaultProxy(s3_endpoint, fail_share=0.2, reset_share=0.05, seed=3) as proxy:
        os.environ["AWS_ENDPOINT_URL"] = proxy.url
        s3mod.reset_clients()
        try:
            row = tag_flow(source="s3://flaky/videos", lake="s3://flaky/lake", model=str(model), shard_size=3)
            _, rows = query("s3://flaky/lake", "SELECT video_uri, status, error FROM latest_predictions")
        finally:
            os.environ["AWS_ENDPOINT_URL"] = s3_endpoint
            s3mod.reset_clients()
    assert proxy.counts["slowdown"] > 5 and proxy.counts["reset"] > 0, proxy.counts
    by_name = {u.rsplit("/", 1)[-1]: (s, e) for u, s, e in rows}
    assert (row["videos_listed"], row["ok"], row["failed"]) == (10, 8, 2)
    assert by_name["forbidden.mp4"] == ("failed", "access denied by the object store")
    assert by_name["vanish.mp4"][0] == "failed" and "not found" in by_name["vanish.mp4"][1]
    assert all(by_name[f"ok_{i}.mp4"][0] == "ok" for i in range(8))
