"""The Prefect pipelines for real: a temporary Prefect server, a moto S3 endpoint, DuckDB over the
Parquet the flows wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import boto3
import duckdb
import pytest
from checkpoints import write_tiny_checkpoint
from conftest import SECRET
from videos import write_indexed

from actionrec.data.synth import SynthConfig, write_dataset
from actionrec.lake.query import query

TINY = {"arch_kwargs": {"width": 4}, "spec_overrides": {"frames_per_clip": 8, "short_side": 32, "crop_size": 32, "crop_width": None}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", ["left", "right", "up", "down"])


def latest(lake: str) -> list[tuple]:
    return query(lake, "SELECT video_uri, status, run_id FROM latest_predictions ORDER BY 1")[1]


def test_tag_twice_skips_done_and_retries_failed(prefect_api, media, checkpoint, tmp_path):
    from flows.tag import tag_flow

    src = tmp_path / "archive"
    src.mkdir()
    for k in ("mp4", "avi", "mkv"):
        shutil.copy(media[k], src / media[k].name)
    shutil.copy(media["text"], src / "broken.mp4")
    (src / "notes.txt").write_text("not listed: wrong extension")
    lake = str(tmp_path / "lake")
    first = tag_flow(source=str(src), lake=lake, model=str(checkpoint), shard_size=2, top_k=3, clips=2)
    assert (first["videos_listed"], first["ok"], first["failed"], first["videos_skipped"]) == (4, 3, 1, 0)
    rows = latest(lake)
    assert len(rows) == 4 and sum(r[1] == "failed" for r in rows) == 1

    second = tag_flow(source=str(src), lake=lake, model=str(checkpoint), shard_size=2)
    assert (second["videos_skipped"], second["ok"], second["failed"]) == (3, 0, 1)  # only the failed one again
    assert len(latest(lake)) == 4

    write_indexed(src / "new.mp4", 30)
    third = tag_flow(source=str(src), lake=lake, model=str(checkpoint), shard_size=2)
    assert (third["ok"], third["failed"], third["videos_skipped"]) == (1, 1, 3)
    rows = latest(lake)
    assert len(rows) == 5 and len({r[0] for r in rows}) == 5
    new_row = [r for r in rows if r[0].endswith("/new.mp4")][0]
    assert new_row[2] == third["run_id"]

    # The contract users write SQL against: columns, types, reasons, hive partitions, plain DuckDB.
    cols, data = query(lake, "SELECT * FROM predictions WHERE status = 'failed' LIMIT 1")
    failed = dict(zip(cols, data[0], strict=True))
    assert "not a video" in failed["error"] and failed["video_uri"].startswith("file://")
    assert failed["run_date"] == third["started_at"].date()
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*), count(DISTINCT run_id) FROM read_parquet('{lake}/predictions/*/*.parquet', "
                    "hive_partitioning=true)").fetchone()
    assert n == (4 + 1 + 2, 3)
    top_k = con.execute(f"SELECT top_k, top1_label, num_clips FROM read_parquet('{lake}/predictions/*/*.parquet') "
                        "WHERE status = 'ok' LIMIT 1").fetchone()
    assert len(top_k[0]) == 3 and top_k[0][0]["label"] == top_k[1] and top_k[2] == 2
    clips = query(lake, "SELECT count(*), min(clip_index), max(clip_index) FROM clip_predictions")[1][0]
    assert clips == (3 * 2 + 3, 0, 2)  # 3 ok videos x 2 clips, then the new one with the default 3 clips
    runs = query(lake, "SELECT count(*), sum(videos_listed) FROM runs")[1][0]
    assert runs == (3, 4 + 4 + 5)


def test_retrain_promotes_only_a_better_model(prefect_api, tmp_path):
    from flows.retrain import retrain_flow

    labels = write_dataset(tmp_path / "data", SynthConfig(per_class=10, seed=11, size=32, num_frames=16, fps=16,
                                                           val_fraction=0.25))
    # hash split on (relative-to-table) URIs would vary with tmp paths: pin test to the val split written by synth
    lake = str(tmp_path / "lake")
    worse = {**TINY, "lr": 1e-7, "seed": 1}
    better = {**TINY, "seed": 2}
    a = retrain_flow(labels=str(labels), lake=lake, split="val", clips=1, train_options={**worse, "epochs": 1})
    assert a["promoted"] and a["reason"] == "no champion yet"
    b = retrain_flow(labels=str(labels), lake=lake, split="val", clips=1, train_options={**better, "epochs": 15})
    assert b["promoted"], b
    assert b["candidate_top1"] > a["candidate_top1"]
    c = retrain_flow(labels=str(labels), lake=lake, split="val", clips=1, train_options={**worse, "epochs": 1})
    assert not c["promoted"] and c["champion_version"] == b["candidate_version"]
    champion = json.loads((tmp_path / "lake" / "models" / "actionrec" / "champion.json").read_text())
    assert champion["version"] == b["candidate_version"]
    rows = query(lake, "SELECT model_version, promoted, split FROM evaluations ORDER BY created_at")[1]
    assert [r[1] for r in rows] == [True, True, False] and {r[2] for r in rows} == {"val"}
    ev = tmp_path / "lake" / "evaluations" / "actionrec" / b["candidate_version"]
    assert (ev / "confusion.png").exists() and "Top-1" in (ev / "report.md").read_text()


def _put_tree(bucket: str, prefix: str, files: list) -> None:
    s3 = boto3.client("s3")
    for f in files:
        s3.upload_file(str(f), bucket, f"{prefix}/{f.name}")


def test_s3_source_and_lake_through_the_cli(prefect_api, s3_endpoint, media, checkpoint, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="archive")
    files = [media["mp4"], media["avi"], media["empty"], media["vfr"], media["mkv"], media["short"]]
    _put_tree("archive", "videos", files)
    s3.put_object(Bucket="archive", Key="videos/sub dir/ünï code.mp4", Body=media["mkv"].read_bytes())
    s3.put_object(Bucket="archive", Key="videos/../../escape.mp4", Body=media["avi"].read_bytes())
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, "-m", "deployments.cli"]
    tag = subprocess.run([*cmd, "tag", "s3://archive/videos", "--lake", "s3://archive/lake", "--model",
                          str(checkpoint), "--s3-endpoint-url", s3_endpoint, "--shard-size", "3", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert tag.returncode == 1, tag.stderr[-3000:]  # the empty file failed, with its row
    row = json.loads(tag.stdout.strip().splitlines()[-1])
    assert (row["videos_listed"], row["ok"], row["failed"]) == (len(files) + 2, len(files) + 1, 1)
    q = subprocess.run([*cmd, "query", "select top1_label, count(*) from latest_predictions group by 1",
                        "--lake", "s3://archive/lake", "--format", "json"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert q.returncode == 0, q.stderr
    counts = [json.loads(x) for x in q.stdout.splitlines()]
    assert sum(c["count_star()"] for c in counts) == len(files) + 2
    uris = query("s3://archive/lake", "SELECT video_uri, error FROM latest_predictions ORDER BY 1")[1]
    assert any(u.endswith("sub dir/ünï code.mp4") for u, _ in uris)
    assert "s3://archive/videos/../../escape.mp4" in [u for u, _ in uris]  # a key, never a path
    assert any("empty" in (e or "") for _, e in uris)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="archive", Prefix="lake/")["Contents"]]
    assert all(k.startswith("lake/predictions/run_date=") or k.startswith("lake/clip_predictions/run_date=")
               or k.startswith("lake/runs/run_date=") or k.startswith("lake/reports/run_date=")
               or k.startswith("lake/labeling_queue/run_date=") or k == "lake/_lease/tag.json" for k in keys), keys
    assert sum(k.startswith("lake/reports/run_date=") for k in keys) == 1  # the run's report, beside it
    # The secret key never shows up: not in output or logs, not in any object the run wrote.
    assert SECRET not in tag.stdout + tag.stderr + q.stdout + q.stderr
    for key in keys:
        assert SECRET.encode() not in s3.get_object(Bucket="archive", Key=key)["Body"].read()


def test_tag_on_dask_cluster(prefect_api, media, checkpoint, tmp_path):
    from distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    from flows.tag import tag_flow

    src = tmp_path / "src"
    src.mkdir()
    for k in ("mp4", "avi", "mkv", "vfr", "short"):
        shutil.copy(media[k], src / media[k].name)
    lake = str(tmp_path / "lake")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        flow = tag_flow.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        row = flow(source=str(src), lake=lake, model=str(checkpoint), shard_size=2)
    assert (row["ok"], row["failed"]) == (5, 0)
    assert len(list((tmp_path / "lake" / "predictions").rglob("*.parquet"))) == 3  # one file per shard
    assert len(latest(lake)) == 5


def test_torch_and_the_default_engine_agree_and_each_row_says_which_scored_it(prefect_api, tmp_path):
    """The same trained checkpoint tagged with ``engine="torch"`` and with the default engine (OpenVINO
    on this CPU) over a fresh synthetic draw: at least 99% the same top-1, and the lake says which
    engine and precision produced each row and each run."""
    from actionrec.data.labels import read_labels
    from actionrec.engines.choice import choose_engine
    from actionrec.models.refs import load_model
    from actionrec.training.config import TrainConfig
    from actionrec.training.loop import train
    from flows.tag import tag_flow

    labels = write_dataset(tmp_path / "train", SynthConfig(per_class=4, seed=3, size=32, num_frames=16, fps=16))
    cfg = TrainConfig(epochs=4, batch_size=8, seed=0, arch_kwargs=TINY["arch_kwargs"],
                      spec_overrides=TINY["spec_overrides"])
    train(cfg, read_labels(labels), out=tmp_path / "model" / "model.pt", progress=False)
    fresh = write_dataset(tmp_path / "fresh", SynthConfig(per_class=4, seed=97, size=32, num_frames=16, fps=16))
    source = str(fresh.parent / "videos")
    runs = {}
    for engine in ("torch", "auto"):
        runs[engine] = tag_flow(source=source, lake=str(tmp_path / engine), model=str(tmp_path / "model"),
                                clips=2, engine=engine)
    default = choose_engine("auto", "auto", "cpu")
    assert (runs["torch"]["engine"], runs["torch"]["precision"]) == ("torch", "f32")
    assert (runs["auto"]["engine"], runs["auto"]["precision"]) == (default.engine, default.precision)
    top1 = {}
    for engine in runs:
        rows = query(str(tmp_path / engine), "SELECT video_uri, top1_label, engine, precision FROM predictions")[1]
        assert {(r[2], r[3]) for r in rows} == {(runs[engine]["engine"], runs[engine]["precision"])}
        top1[engine] = {r[0]: r[1] for r in rows}
        assert runs[engine]["ok"] == len(rows) >= 32
    same = sum(top1["torch"][u] == top1["auto"][u] for u in top1["torch"])
    assert same >= 0.99 * len(top1["torch"]), (same, len(top1["torch"]))
    assert load_model(str(tmp_path / "model")).version == runs["auto"]["model_version"]
