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


def test_shots_are_found_on_the_dense_pass_and_segment_edges_snap_to_them(tagged):
    _, shots = query(tagged["lake"], "SELECT start_s, end_s, start_kind FROM shots ORDER BY shot_index")
    changes = {(start, kind) for start, _, kind in shots}
    true_edges = [end for _, _, end in tagged["truth"][:-1]]
    # every hard cut, the fade (its one black frame, at 19 s) and the flash's two cuts; nothing else
    assert changes == {(0.0, "start"), (2.0, "cut"), (2.5, "cut"), (19.0, "fade")} | {
        (t, "cut") for t in true_edges if t != 19}
    assert shots[-1][1] == 43.0 and all(a[1] == b[0] for a, b in zip(shots, shots[1:], strict=False))
    _, segments = query(tagged["lake"], "SELECT start_s, end_s FROM segments ORDER BY start_s")
    assert [end for _, end in segments[:-1]] == true_edges  # halfway between clips, then onto the cut


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


def _cells(png, n: int, height: int = 96, width: int = 160, gap: int = 2, label_h: int = 12) -> list:
    """The thumbnails of a contact sheet, as mean RGB colours."""
    import numpy as np
    from PIL import Image

    sheet = np.asarray(Image.open(png).convert("RGB"))
    cols = min(n, 4)
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (height + label_h + gap) + label_h, c * (width + gap)
        out.append(sheet[y : y + height, x : x + width].reshape(-1, 3).mean(axis=0))
    return out


def test_find_lists_the_moments_best_first_with_a_contact_sheet(tagged, capsys):
    sheet = tagged["dir"] / "red.png"
    assert main(["find", "red", "--lake", tagged["lake"], "--json", "--sheet", str(sheet)]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    _, reds = query(tagged["lake"], "SELECT start_s FROM segments WHERE label = 'red'")
    assert len(found) == len(reds) == 3 and {f["label"] for f in found} == {"red"}
    assert [f["score"] for f in found] == sorted((f["score"] for f in found), reverse=True)
    assert all(f["video_uri"] == tagged["uri"] and f["end_s"] - f["start_s"] >= 3.5 for f in found)
    for r, g, b in _cells(sheet, len(found)):  # each thumbnail is a red frame at its segment's start
        assert r > 60 and r > 3 * max(g, b), (r, g, b)


def test_find_says_what_there_is_when_nothing_matches(tagged, capsys):
    assert main(["find", "purple", "--lake", tagged["lake"]]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "labels with segments: blue, green, red, white" in out.err
    assert main(["find", "red", "--min-score", "0.999", "--lake", tagged["lake"], "--json"]) == 0
    assert capsys.readouterr().out == ""


def test_find_takes_the_latest_run_of_a_video_only(tagged, capsys):
    """Segments of an earlier run of the same video are not listed again."""
    import datetime

    import pyarrow as pa

    from actionrec.lake.lake import Lake
    from actionrec.lake.schema import SEGMENTS

    older = {"run_id": "20000101T000000Z-00000000", "video_uri": tagged["uri"], "model_name": "colours",
             "model_version": "old", "segment_index": 0, "label": "red", "start_s": 0.0, "end_s": 43.0,
             "score": 0.99, "num_clips": 43}
    Lake(tagged["lake"]).write_part("segments", f"{older['run_id']}-00000", datetime.date(2000, 1, 1),
                                    pa.Table.from_pylist([older], SEGMENTS))
    assert main(["find", "red", "--lake", tagged["lake"], "--json"]) == 0
    runs = {json.loads(line)["run_id"] for line in capsys.readouterr().out.splitlines()}
    assert runs == {tagged["row"]["run_id"]}


def test_find_and_the_views_on_an_s3_lake(prefect_api, s3_endpoint, tagged, capsys):
    import boto3

    from flows.tag import tag_flow

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="moments")
    s3.upload_file(str(tagged["dir"] / "archive" / "story.mp4"), "moments", "archive/story.mp4")
    row = tag_flow(source="s3://moments/archive", lake="s3://moments/lake", model=str(tagged["dir"] / "model"),
                   every=1.0, decode_backend="thread", queue_size=0, embeddings=True)
    assert row["ok"] == 1
    _, [(vectors, norm)] = query("s3://moments/lake", "SELECT count(*), any_value(list_dot_product(embedding, "
                                                      "embedding)) FROM embeddings")
    assert vectors == 1 and norm == pytest.approx(1.0, abs=1e-4)  # a dense run stores the video's embedding too
    sheet = tagged["dir"] / "s3.png"
    assert main(["find", "blue", "--lake", "s3://moments/lake", "--json", "--sheet", str(sheet)]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    local = query(tagged["lake"], "SELECT start_s, end_s FROM segments WHERE label = 'blue' ORDER BY 1")[1]
    assert sorted((f["start_s"], f["end_s"]) for f in found) == local and len(local) == 2
    assert all(f["video_uri"] == "s3://moments/archive/story.mp4" for f in found)
    assert all(b > 60 and b > 3 * max(r, g) for r, g, b in _cells(sheet, len(found)))
    _, [(segments, shots)] = query("s3://moments/lake", "SELECT (SELECT count(*) FROM segments), "
                                                        "(SELECT count(*) FROM shots)")
    _, [(local_segments, local_shots)] = query(tagged["lake"], "SELECT (SELECT count(*) FROM segments WHERE "
                                                               "run_id = $r), (SELECT count(*) FROM shots)",
                                               {"r": tagged["row"]["run_id"]})
    assert (segments, shots) == (local_segments, local_shots) == (9, 11)


def test_predict_every_prints_the_dense_timeline(tagged, capsys):
    video = str(tagged["dir"] / "archive" / "story.mp4")
    assert main(["predict", video, "--model", str(tagged["dir"] / "model"), "--every", "2.5", "--timeline",
                 "--json", "--decode-backend", "thread", "--top-k", "1"]) == 0
    (out,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out["num_clips"] == len(out["clips"]) == 17  # starts 0, 2.5, ... 40 in 43 s
    assert [c["start_s"] for c in out["clips"]][:3] == [0.0, 2.5, 5.0]
    assert out["clips"][4]["top_k"][0]["label"] == "blue"  # 10 s
    assert [s["label"] for s in out["segments"]][:3] == ["red", "green", "blue"]
