"""The lake: the skip set, run tables as DuckDB sees them, read-only SQL with parameters, and the
model registry (promotion with history, rollback, compare-and-swap) on a folder and on S3."""

from __future__ import annotations

import datetime as dt
import json
import threading

import duckdb
import pyarrow as pa
import pytest

from actionrec.errors import ConcurrentUpdateError, ConfigError, ModelError
from actionrec.lake.lake import Lake
from actionrec.lake.query import query
from actionrec.lake.schema import PREDICTIONS

DAY = dt.date(2026, 11, 28)


def _rows(model_name: str, version: str, uris: list[str], status: str = "ok", run_id: str = "r1") -> pa.Table:
    now = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.timezone.utc)
    return pa.Table.from_pylist([{"run_id": run_id, "video_uri": u, "video_etag": "e1", "video_bytes": 1,
                                  "model_name": model_name, "model_version": version, "status": status,
                                  "processed_at": now} for u in uris], PREDICTIONS)


def _empty_clips() -> pa.Table:
    from actionrec.lake.schema import CLIP_PREDICTIONS

    return CLIP_PREDICTIONS.empty_table()


def test_the_skip_set_belongs_to_one_model_name_and_version(tmp_path):
    """Bug: every torchvision reference has the version KINETICS400_V1, so the skip set of one
    model hid every video from another. Identity of work is (uri, etag, model name, model version)."""
    lake = Lake(tmp_path / "lake")
    lake.write_shard("r1", DAY, 0, _rows("torchvision-r3d_18", "KINETICS400_V1", ["file:///a.mp4", "file:///b.mp4"]),
                     _empty_clips())
    assert lake.done("torchvision-r3d_18", "KINETICS400_V1") == {("file:///a.mp4", "e1"), ("file:///b.mp4", "e1")}
    assert lake.done("torchvision-r2plus1d_18", "KINETICS400_V1") == set()
    assert lake.done("torchvision-r3d_18", "other") == set()


def test_run_date_is_a_date_as_in_plain_duckdb(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.write_shard("r1", DAY, 0, _rows("m", "v", ["file:///a.mp4"]), _empty_clips())
    ours = query(str(tmp_path / "lake"), "SELECT typeof(run_date), run_date FROM predictions")[1]
    plain = duckdb.connect().execute(
        f"SELECT typeof(run_date), run_date FROM read_parquet('{tmp_path}/lake/predictions/*/*.parquet', "
        "hive_partitioning=true)").fetchall()
    assert ours == plain == [("DATE", DAY)]


def test_query_takes_values_as_parameters_not_as_sql(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.write_shard("r1", DAY, 0, _rows("m", "v", ["file:///a.mp4", "file:///b.mp4"]), _empty_clips())
    root = str(tmp_path / "lake")
    assert query(root, "SELECT count(*) FROM predictions WHERE video_uri = ?", ["file:///a.mp4"])[1] == [(1,)]
    assert query(root, "SELECT count(*) FROM predictions WHERE video_uri = ?", ["x' OR '1'='1"])[1] == [(0,)]


def test_a_mistyped_lake_is_an_error_not_an_empty_lake(tmp_path):
    with pytest.raises(ConfigError, match="no lake at"):
        query(str(tmp_path / "no-such-lake"), "SELECT count(*) FROM predictions")


def _register(lake: Lake, tmp_path, name: str, tag: str) -> str:
    ckpt = tmp_path / f"{tag}.pt"
    ckpt.write_bytes(f"weights of {tag}".encode())
    return lake.register_model(name, ckpt, tag, {"arch": "tiny3d", "classes": ["a", "b"], "created_at": tag})


def _registry_round_trip(lake: Lake, tmp_path) -> None:
    v1, v2, v3 = (_register(lake, tmp_path, "m", t) for t in ("v1", "v2", "v3"))
    assert lake.versions("m") == [v1, v2, v3] and lake.champion("m") is None
    lake.promote("m", v1, reason="first", by="alice")
    lake.promote("m", v2, reason="better", by="bob", expected=v1)
    lake.promote("m", v3, reason="better again", by="bob", expected=v2)
    assert lake.champion("m") == v3
    back = lake.rollback("m", by="carol")
    assert (back.version, back.previous, back.rollback, back.by) == (v2, v3, True, "carol")
    assert lake.rollback("m").version == v1  # a second rollback walks further back, not forth
    with pytest.raises(ConfigError, match="nothing to roll back"):
        lake.rollback("m")
    history = lake.history("m")
    assert [(e.version, e.previous, e.rollback) for e in history] == [
        (v1, None, False), (v2, v1, False), (v3, v2, False), (v2, v3, True), (v1, v2, True)]
    assert [e.by for e in history[:3]] == ["alice", "bob", "bob"]
    with pytest.raises(ConcurrentUpdateError):  # the decision was made against v3, the champion is v1
        lake.promote("m", v2, reason="stale", expected=v3)
    assert lake.champion("m") == v1
    with pytest.raises(ModelError, match="no such model"):
        lake.promote("m", "v9", reason="typo")


def test_registry_promotion_history_and_rollback_on_a_folder(tmp_path):
    _registry_round_trip(Lake(tmp_path / "lake"), tmp_path)


def test_registry_promotion_history_and_rollback_on_s3(s3_endpoint, tmp_path):
    import boto3

    boto3.client("s3").create_bucket(Bucket="registry")
    _registry_round_trip(Lake("s3://registry/lake"), tmp_path)


def test_two_promotions_against_the_same_champion_cannot_both_win(tmp_path):
    """Compare-and-swap on champion.json: of racing runs that evaluated against one champion, one wins."""
    lake = Lake(tmp_path / "lake")
    base = _register(lake, tmp_path, "m", "base")
    lake.promote("m", base, reason="first")
    candidates = [_register(lake, tmp_path, "m", f"c{i}") for i in range(6)]
    outcomes: list[str] = []
    start = threading.Barrier(len(candidates))

    def race(version: str) -> None:
        start.wait()
        try:
            lake.promote("m", version, reason="race", expected=base)
            outcomes.append(version)
        except ConcurrentUpdateError:
            outcomes.append("lost")

    threads = [threading.Thread(target=race, args=(v,)) for v in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "lost"]
    assert len(winners) == 1 and lake.champion("m") == winners[0]
    assert [e.version for e in lake.history("m")] == [base, winners[0]]
    record = json.loads((tmp_path / "lake" / "models" / "m" / "champion.json").read_text())
    assert record["previous"] == base
