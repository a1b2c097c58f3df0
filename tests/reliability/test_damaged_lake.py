"""A damaged lake file or an unreadable source entry costs one warning and one counted item, never
the night's run or a query."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.lake.lake import Lake
from actionrec.lake.query import query


@pytest.fixture()
def tagged(prefect_api, tmp_path):
    """A lake with one run of 6 videos, 2 per shard."""
    from flows.tag import tag_flow

    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        write_indexed(src / f"v{i}.mp4", 20 + i)
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    lake = tmp_path / "lake"
    first = tag_flow(source=str(src), lake=str(lake), model=str(model), shard_size=2, clips=1)
    assert first["ok"] == 6
    return src, model, lake


def test_damaged_files_are_skipped_counted_retagged_and_quarantined(tagged, capsys, caplog):
    from actionrec.cli import main
    from flows.tag import tag_flow

    src, model, lake = tagged
    shards = sorted((lake / "predictions").rglob("*.parquet"))
    data = shards[0].read_bytes()
    shards[0].write_bytes(data[: len(data) // 2])  # half-truncated: its 2 videos are no longer "done"
    day = shards[0].parent
    (day / "notes.parquet").write_text("this is text, not Parquet")
    (day / "empty.parquet").write_bytes(b"")
    shutil.copy(next((lake / "runs").rglob("*.parquet")), day / "a-runs-file.parquet")  # another table's schema

    with caplog.at_level("WARNING", logger="actionrec.lake.lake"):
        cols, rows = query(str(lake), "SELECT count(*), count(top1_label) FROM predictions")
    assert rows == [(4, 4)]  # the other table's file is not read as rows of nulls
    warned = [r.getMessage() for r in caplog.records if "skipping damaged lake file" in r.getMessage()]
    assert len(warned) == 4 and any("notes.parquet" in w for w in warned)

    second = tag_flow(source=str(src), lake=str(lake), model=str(model), shard_size=2, clips=1)
    assert (second["damaged_files"], second["ok"], second["videos_skipped"]) == (4, 2, 4)
    assert query(str(lake), "SELECT damaged_files FROM runs WHERE run_id = ?", [second["run_id"]])[1] == [(4,)]

    assert main(["lake", "check", "--lake", str(lake), "--json"]) == 1
    found = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    reasons = {r["file"].rsplit("/", 1)[-1]: r["reason"] for r in found}
    assert set(reasons) == {shards[0].name, "notes.parquet", "empty.parquet", "a-runs-file.parquet"}
    assert "not a readable Parquet file" in reasons["notes.parquet"]
    assert "not this table's" in reasons["a-runs-file.parquet"]
    assert main(["lake", "check", "--lake", str(lake), "--quarantine"]) == 1
    assert len(list((lake / "_quarantine").rglob("*.parquet"))) == 4
    assert main(["lake", "check", "--lake", str(lake)]) == 0
    assert Lake(lake).check() == {}
    per_video = query(str(lake), "SELECT video_uri, count(*) FROM predictions WHERE status = 'ok' GROUP BY 1")[1]
    assert len(per_video) == 6 and all(n == 1 for _, n in per_video)
    for f in (lake / "predictions").rglob("*.parquet"):
        pq.read_table(f)


def test_unreadable_source_entries_become_failed_rows(prefect_api, media, tmp_path):
    """Reported: one dangling link stopped the whole run (the listing task retried, then a traceback)."""
    from flows.tag import tag_flow

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(media["mp4"], src / "good.mp4")
    os.symlink(tmp_path / "gone.mp4", src / "dangling.mp4")
    os.symlink(src / "loop_b.mp4", src / "loop_a.mp4")
    os.symlink(src / "loop_a.mp4", src / "loop_b.mp4")
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    row = tag_flow(source=str(src), lake=str(tmp_path / "lake"), model=str(model), clips=1)
    assert (row["videos_listed"], row["ok"], row["failed"]) == (4, 1, 3)
    got = dict(query(str(tmp_path / "lake"), "SELECT video_uri, error FROM latest_predictions WHERE status = 'failed'")[1])
    reasons = {uri.rsplit("/", 1)[-1]: why for uri, why in got.items()}
    assert "does not exist" in reasons["dangling.mp4"]
    assert reasons["loop_a.mp4"].startswith("cannot read this entry") and "loop_b.mp4" in reasons
