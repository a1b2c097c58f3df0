"""People's answers: Label Studio's export formats read back, the labels table append-only and
idempotent, conflicts resolved by the stated rule, the queue's choice, and presigned URLs that work."""

from __future__ import annotations

import json
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import boto3
import pytest

from actionrec.data.labels import hash_split
from actionrec.errors import ConfigError
from actionrec.lake.query import LABEL_RULE, query
from actionrec.loop.labels import Answer, import_answers, snapshot
from actionrec.loop.labelstudio import VideoUrls, import_file, label_config, read_answers, tasks
from actionrec.loop.queue import Candidate, choose, entropy, margin

UTC = timezone.utc
A, B = "file:///archive/a.mp4", "file:///archive/b.mp4"


def _ls_task(task_id, uri, *annotations):
    return {"id": task_id, "data": {"video": f"/data/local-files/?d=archive/{task_id}.mp4", "video_uri": uri},
            "annotations": list(annotations), "predictions": []}


def _annotation(label, who, when, cancelled=False):
    return {"id": 1, "completed_by": who, "was_cancelled": cancelled, "created_at": when, "updated_at": when,
            "lead_time": 3.2, "result": [{"from_name": "action", "to_name": "video", "type": "choices",
                                          "origin": "manual", "value": {"choices": [label]}}]}


def test_label_studio_json_export_is_read_as_label_studio_writes_it():
    export = [
        _ls_task(1, A, _annotation("jump", 3, "2026-11-27T09:00:00.1Z"),
                 _annotation("run", {"id": 4, "email": "bo@example.org"}, "2026-11-27T10:00:00Z")),
        _ls_task(2, B, _annotation("run", 3, "2026-11-27T11:00:00Z", cancelled=True)),  # skipped: no answer
        _ls_task(3, "file:///archive/c.mp4"),  # not labeled yet
    ]
    source, answers = read_answers(json.dumps(export).encode(), "export.json")
    assert source == "labelstudio"
    assert [(a.video_uri, a.label, a.annotator, a.task_id) for a in answers] == [
        (A, "jump", "3", "1"), (A, "run", "bo@example.org", "1")]
    assert answers[0].labeled_at == datetime(2026, 11, 27, 9, 0, 0, 100000, tzinfo=UTC)


@pytest.mark.parametrize(("text", "source", "expected"), [
    # JSON_MIN: one flat object per task, the choice under the control's name
    (json.dumps([{"id": 5, "video": "/x", "video_uri": A, "action": "jump", "annotator": "al@example.org",
                  "annotation_id": 9, "created_at": "2026-11-27T09:00:00Z", "updated_at": "2026-11-27T09:05:00Z",
                  "lead_time": 4.1}]), "labelstudio", [(A, "jump", "al@example.org")]),
    # Label Studio's CSV export
    ("video,video_uri,id,action,annotator,annotation_id,created_at,updated_at,lead_time\n"
     f"/x,{A},5,jump,al@example.org,9,2026-11-27T09:00:00Z,2026-11-27T09:05:00Z,4.1\n",
     "labelstudio", [(A, "jump", "al@example.org")]),
    # a plain CSV, with and without who answered
    (f"video_uri,label,annotator\n{A},jump,\n{B},run,cy\n", "csv", [(A, "jump", None), (B, "run", "cy")]),
])
def test_other_formats(text, source, expected):
    got_source, answers = read_answers(text.encode(), "file")
    assert got_source == source
    assert [(a.video_uri, a.label, a.annotator) for a in answers] == expected


@pytest.mark.parametrize(("text", "words"), [
    ("not json [", "labels CSV needs columns"),
    ("[{\"id\": 1, \"data\": {\"video\": \"/x\"}, \"annotations\": []}]", "no data.video_uri"),
    ("[1, 2]", "not a JSON object"),
    ("{\"id\": 1, \"data\": {\"video_uri\": \"x\"}, \"annotations\": [{\"created_at\": \"yesterday\", "
     "\"result\": [{\"type\": \"choices\", \"from_name\": \"action\", \"value\": {\"choices\": [\"a\"]}}]}]}",
     "not a time"),
])
def test_a_file_that_is_not_an_export_gets_a_clear_error(text, words):
    with pytest.raises(ConfigError, match=words.replace("labels CSV", "label CSV")):
        read_answers(text.encode(), "file")


def test_conflicts_are_kept_and_resolved_by_the_stated_rule(tmp_path):
    """Each annotator's latest answer is one vote; most votes wins; a tie goes to the latest answer."""
    lake = str(tmp_path / "lake")
    t = [datetime(2026, 11, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
    first = import_answers(lake, [Answer(A, "jump", "al", t[0]), Answer(A, "run", "bo", t[1]),
                                  Answer(A, "run", "al", t[2]),  # al changed their mind: al's vote is now "run"
                                  Answer(B, "jump", "al", t[0])], source="csv", content=b"1")
    second = import_answers(lake, [Answer(A, "jump", "cy", t[3]), Answer(A, "jump", "dee", t[3]),
                                   Answer(B, "run", "bo", t[3])], source="labelstudio", content=b"2")
    again = import_answers(lake, [Answer(B, "walk", "x", t[3])], source="csv", content=b"2")
    assert first.new and second.new and not again.new and again.labels_version == second.labels_version
    assert first.labels_version != second.labels_version
    rows = query(lake, "SELECT video_uri, label, votes, answers, conflict, annotator FROM latest_labels ORDER BY 1")[1]
    assert rows == [(A, "jump", 2, 4, True, "dee"),  # jump (cy, dee) beats run (al, bo)
                    (B, "run", 1, 2, True, "bo")]  # a 1-1 tie: bo answered last
    assert query(lake, "SELECT count(*) FROM labels")[1] == [(7,)]  # every answer is kept
    assert "tie" in LABEL_RULE
    table = snapshot(lake)
    assert table.endswith(f"label_sets/{second.labels_version}.parquet") and snapshot(lake) == table


def test_a_csv_import_resolves_its_paths_says_who_answered_and_may_pin_a_split(tmp_path):
    import pyarrow.parquet as pq

    (tmp_path / "videos").mkdir()
    (tmp_path / "labels.csv").write_text("video_uri,label,split\nvideos/a.mp4,jump,test\nvideos/b.mp4,run,\n")
    lake = str(tmp_path / "lake")
    done = import_file(lake, tmp_path / "labels.csv", annotator="ed")
    assert done.answers == 2 and done.new
    a, b = ((tmp_path / "videos" / n).resolve().as_uri() for n in ("a.mp4", "b.mp4"))
    assert query(lake, "SELECT video_uri, annotator, source, split FROM labels ORDER BY 1")[1] == [
        (a, "ed", "csv", "test"), (b, "ed", "csv", None)]
    table = pq.read_table(snapshot(lake)).to_pylist()
    assert table == [{"video_uri": a, "label": "jump", "split": "test"},
                     {"video_uri": b, "label": "run", "split": hash_split(b)}]  # unpinned: the URI's hash
    (tmp_path / "bad.csv").write_text("video_uri,label,split\nvideos/a.mp4,jump,holdout\n")
    with pytest.raises(ConfigError, match="split must be one of train, val, test, not 'holdout'"):
        import_file(lake, tmp_path / "bad.csv")


def test_the_label_config_lists_every_class_safely():
    root = ET.fromstring(label_config(["jump", 'say "hi" & <wave>']))
    choices = root.find("Choices")
    assert choices.get("name") == "action" and choices.get("toName") == "video"
    assert [c.get("value") for c in choices.findall("Choice")] == ["jump", 'say "hi" & <wave>']
    assert root.find("Video").get("value") == "$video"


def test_a_presigned_url_opens_the_video_for_the_labeler(s3_endpoint):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="labeling")
    s3.put_object(Bucket="labeling", Key="clips/a b.mp4", Body=b"video bytes")
    row = {"video_uri": "s3://labeling/clips/a b.mp4", "top_k": [{"label": "jump", "class_id": 0, "score": 0.6},
                                                               {"label": "run", "class_id": 1, "score": 0.3}],
           "model_name": "m", "model_version": "v1", "reason": "low margin", "run_id": "r"}
    (task,) = tasks([row], VideoUrls(expiry_s=600))
    url = task["data"]["video"]
    assert "X-Amz-Expires=600" in url and task["data"]["video_uri"] == row["video_uri"]
    with urllib.request.urlopen(url) as response:  # what the labeler's browser does
        assert response.read() == b"video bytes"
    assert task["predictions"][0]["result"][0]["value"] == {"choices": ["jump"]}
    assert task["data"]["model_top_k"] == "jump 0.60, run 0.30"
    with pytest.raises(ConfigError, match="7 days"):
        VideoUrls(expiry_s=8 * 24 * 3600)


def _c(uri, label, scores, other=None):
    top = [{"label": label, "class_id": 0, "score": scores[0]}] + [
        {"label": f"x{i}", "class_id": i, "score": s} for i, s in enumerate(scores[1:], start=1)]
    return Candidate(uri, "etag", top, other)


def test_margin_and_entropy():
    assert margin([{"score": 0.5}, {"score": 0.3}]) == pytest.approx(0.2)
    assert margin([{"score": 0.9}]) == pytest.approx(0.9)
    assert entropy([{"score": 0.5}, {"score": 0.5}]) == pytest.approx(1.0)
    assert entropy([{"score": 0.5}, {"score": 0.25}]) == pytest.approx(1.5)  # 0.25 left outside the top-k


@pytest.mark.parametrize(("size", "per_label", "expected"), [
    # a disagreement outranks any uncertainty; then the most uncertain
    (2, 0, ["dis", "u1"]),
    (3, 0, ["dis", "u1", "u2"]),
    # the rare label's best candidate gets a slot although others are more uncertain
    (2, 1, ["dis", "rare"]),
    (3, 1, ["dis", "u1", "rare"]),
    (10, 1, ["dis", "u1", "u2", "u3", "rare"]),
])
def test_the_queue_takes_the_most_uncertain_with_a_quota_per_label(size, per_label, expected):
    found = [_c("u1", "common", [0.40, 0.39]), _c("u2", "common", [0.45, 0.40]), _c("u3", "common", [0.6, 0.2]),
             _c("dis", "common", [0.95, 0.01], other=("v0", "other")), _c("rare", "rare", [0.9, 0.05])]
    picked = choose(found, size, per_label)
    assert [c.video_uri for c, _ in picked] == expected
    quota = {c.video_uri for c, q in picked if q}
    assert ("rare" in quota) == (per_label > 0 and "rare" in expected)
