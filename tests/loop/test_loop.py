"""The loop end to end, on real Prefect runs over real videos: labels in the lake -> a champion ->
tag -> queue -> Label Studio tasks -> answers written as Label Studio exports them -> labels ->
the retrain trigger -> a promoted model that knows the class people named."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from actionrec import load_model
from actionrec.io.video import write_video
from actionrec.lake.lake import Lake
from actionrec.lake.query import query
from actionrec.loop.labels import snapshot
from actionrec.loop.labelstudio import import_file

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
NEW = "blue"  # no one has named it yet: the first table has none; the archive has some, unlabeled
SPLIT_OF = {0: "test", 1: "val", 2: "train", 3: "train"}
QUEUE = 20  # every video waiting for people: 16 blue + 2 red + 2 green (the choice itself: test_labels.py)
TINY = {"arch": "tiny3d", "arch_kwargs": {"width": 4}, "epochs": 8, "hflip": "off",
        "spec_overrides": {"frames_per_clip": 4, "short_side": 32, "crop_size": 32, "crop_width": None}}


def _write(path, colour, rng) -> str:
    frames = np.clip(np.array(colour) * rng.uniform(0.6, 1.2) + rng.normal(0, 25, (8, 32, 32, 3)), 0, 255)
    write_video(path, frames.astype(np.uint8), 8)
    return path.resolve().as_uri()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """An archive of 3 x 16 short videos whose class is their colour (with brightness and noise
    varying per video: a model learns it in a few epochs, so the test is about the loop, not about
    learning), and 4 blue videos outside it to test on. The first label table names red and green
    videos, pinning a quarter of each to test and a quarter to val, all but two of the rest to
    train; no blue video is labeled."""
    root = tmp_path_factory.mktemp("loop")
    (root / "videos").mkdir()
    (root / "unseen").mkdir()
    rng = np.random.default_rng(0)
    truth, first = {}, []
    for label, colour in COLOURS.items():
        for i in range(16):
            uri = _write(root / "videos" / f"{label}_{i:02d}.mp4", colour, rng)
            truth[uri] = label
            if label != NEW and i >= 2:  # 0 and 1 wait for people
                first.append({"video_uri": uri, "label": label, "split": SPLIT_OF[i % 4]})
    unseen = [_write(root / "unseen" / f"{NEW}_{i}.mp4", COLOURS[NEW], rng) for i in range(4)]
    path = root / "first_labels.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["video_uri", "label", "split"])
        w.writeheader()
        w.writerows(first)
    return {"root": root, "first": path, "truth": truth, "labeled": len(first), "unseen": unseen}


def _recall(model_ref: str, lake: str, uris: list[str], label: str) -> float:
    """Share of ``uris`` (all of class ``label``) that the model calls ``label``."""
    results = load_model(model_ref, lake=lake).predict(uris, top_k=1, clips=1)
    return sum(r.top_k[0].label == label for r in results) / len(uris)


def test_answers_from_label_studio_retrain_a_better_model(prefect_api, data, tmp_path):
    from actionrec.cli import main
    from flows.retrain import retrain_on_labels_flow
    from flows.tag import tag_flow

    lake = str(tmp_path / "lake")
    # the first champion cannot name blue: a candidate that knows more classes is promoted by policy
    held = {"min_eval_videos": 3, "train_options": TINY, "init": "scratch", "when_incomparable": "promote"}
    # 1. the first table goes into the lake's labels (a plain CSV); the trigger waits, then trains a champion
    assert import_file(lake, data["first"]).answers == data["labeled"]
    waiting = retrain_on_labels_flow(lake=lake, min_new_labels=data["labeled"] + 1, **held)
    assert waiting == {"triggered": False, "new_labels": data["labeled"], "since_version": None,
                       "min_new_labels": data["labeled"] + 1}
    champion = retrain_on_labels_flow(lake=lake, min_new_labels=10, **held)
    assert champion["triggered"] and champion["promoted"], champion
    first_version = champion["candidate_version"]

    # 2. a nightly run tags the archive and queues what nobody has labeled yet
    row = tag_flow(source=str(data["root"] / "videos"), lake=lake, clips=1, queue_size=QUEUE, queue_per_label=2)
    assert row["ok"] == len(data["truth"])
    unlabeled = len(data["truth"]) - data["labeled"]
    queued = query(lake, "SELECT video_uri, top1_label, rank FROM labeling_queue WHERE run_id = ? ORDER BY rank",
                   [row["run_id"]])[1]
    assert len(queued) == QUEUE == unlabeled and [r[2] for r in queued] == list(range(1, QUEUE + 1))
    scores = [r[0] for r in query(lake, "SELECT score FROM labeling_queue ORDER BY rank")[1]]
    assert scores == sorted(scores, reverse=True)
    labeled_uris = {r[0] for r in query(lake, "SELECT video_uri FROM labels")[1]}
    assert not labeled_uris & {r[0] for r in queued}

    # 3. to Label Studio and back: answers as Label Studio's JSON export writes them
    assert main(["label", "export", "--lake", lake, "--out", str(tmp_path / "ls")]) == 0
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    assert len(tasks) == QUEUE and all(t["data"]["video"].startswith("/data/local-files/?d=") for t in tasks)
    exported = [{"id": n, "data": t["data"], "predictions": t.get("predictions", []), "annotations": [{
        "id": 100 + n, "completed_by": {"id": 7, "email": "alice@example.org"}, "was_cancelled": False,
        "created_at": "2026-11-28T10:00:00.000000Z", "updated_at": "2026-11-28T10:01:00.000000Z",
        "result": [{"from_name": "action", "to_name": "video", "type": "choices", "origin": "manual",
                    "value": {"choices": [data["truth"][t["data"]["video_uri"]]]}}]}]}
        for n, t in enumerate(tasks, start=1)]
    (tmp_path / "export.json").write_text(json.dumps(exported))
    assert main(["label", "import", str(tmp_path / "export.json"), "--lake", lake]) == 0
    assert main(["label", "import", str(tmp_path / "export.json"), "--lake", lake]) == 0  # again: nothing added
    assert query(lake, "SELECT count(*), count(DISTINCT import_id) FROM labels")[1] == [(data["labeled"] + QUEUE, 2)]
    assert query(lake, "SELECT count(*) FROM open_queue")[1] == [(0,)]

    # 4. the trigger counts the answers and retrains from the lake; the new model is promoted, and it
    #    finds the class people named better than the champion before it
    better = retrain_on_labels_flow(lake=lake, min_new_labels=QUEUE, **held)
    assert better["triggered"] and better["new_labels"] == QUEUE and better["promoted"], better
    assert Lake(lake).champion("actionrec") == better["candidate_version"] != first_version
    assert snapshot(lake).endswith(".parquet")
    before = _recall(f"actionrec@{first_version}", lake, data["unseen"], NEW)
    after = _recall(f"actionrec@{better['candidate_version']}", lake, data["unseen"], NEW)
    assert (before, after) == (0.0, 1.0)
