"""Finding the moment end to end: a real tag flow run with ``every`` over a long synthetic video of
known segments, then the ``segments`` view, from ``actionrec query`` and from plain DuckDB."""

from __future__ import annotations

import json

import pytest
from checkpoints import write_colour_checkpoint
from storyboard import COLOURS, write_story

from actionrec.cli import main
from actionrec.lake.query import query
from actionrec.moments.metrics import score_segments


@pytest.fixture(scope="module")
def tagged(prefect_api, tmp_path_factory):
    """One dense tag run (a clip every second) over the story video and a short one."""
    from flows.tag import tag_flow

    d = tmp_path_factory.mktemp("moments")
    (d / "archive").mkdir()
    truth = write_story(d / "archive" / "story.mp4")
    model = write_colour_checkpoint(d / "model" / "model.pt", COLOURS)
    lake = str(d / "lake")
    row = tag_flow(source=str(d / "archive"), lake=lake, model=str(model), every=1.0, decode_backend="thread",
                   queue_size=0)
    return {"lake": lake, "truth": truth, "row": row, "uri": (d / "archive" / "story.mp4").resolve().as_uri(),
            "dir": d}


def test_dense_tagging_recovers_the_true_segments(tagged):
    cols, rows = query(tagged["lake"], "SELECT label, start_s, end_s, score, num_clips, model_name, run_id "
                                       "FROM segments WHERE video_uri = ? ORDER BY start_s", [tagged["uri"]])
    found = [(label, start, end) for label, start, end, *_ in rows]
    scores = score_segments(tagged["truth"], found, min_iou=0.5)
    assert scores.recall >= 0.9 and scores.precision >= 0.9, (found, tagged["truth"])
    assert scores.label_accuracy >= 0.9
    assert all(r[5] == "colours" and r[6] == tagged["row"]["run_id"] and r[4] >= 2 for r in rows)
    # the 0.5 s flash inside the first segment did not split it
    assert found[0][0] == "red" and found[0][2] >= 5


def test_the_timeline_is_dense(tagged):
    _, [(num_clips, status)] = query(tagged["lake"], "SELECT num_clips, status FROM predictions")
    _, [(clips, first, last)] = query(tagged["lake"], "SELECT count(*), min(start_s), max(start_s) "
                                                      "FROM clip_predictions")
    assert status == "ok" and num_clips == clips == 42  # 43 s, 1.625 s clips every second: starts 0 .. 41
    assert (first, last) == (0.0, 41.0)


def test_segments_view_from_the_command_line_and_plain_duckdb(tagged, capsys):
    import duckdb

    assert main(["query", "SELECT label, start_s FROM segments ORDER BY start_s", "--lake", tagged["lake"],
                 "--format", "json"]) == 0
    via_cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    plain = duckdb.sql(f"SELECT label, start_s FROM read_parquet('{tagged['lake']}/segments/*/*.parquet', "
                       "hive_partitioning=true) ORDER BY start_s").fetchall()
    assert [(r["label"], r["start_s"]) for r in via_cli] == plain and len(plain) >= 8
