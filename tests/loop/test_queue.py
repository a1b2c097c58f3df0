"""The queue in a real tag run: the latest challenger's disagreements come first, labeled and
already-queued videos are never asked about again, and `--queue-size 0` asks nothing."""

from __future__ import annotations

import json

import torch
from videos import write_indexed

from actionrec.lake.lake import Lake
from actionrec.lake.query import query
from actionrec.loop.labels import Answer, import_answers
from actionrec.models import build_model, save_checkpoint
from actionrec.models.card import file_version

CLASSES = ["a", "b", "c"]


def _register(lake: Lake, path, favourite: int, created_at: str) -> str:
    """A tiny model that calls every video CLASSES[favourite], by a little."""
    torch.manual_seed(0)
    model = build_model("tiny3d", CLASSES, width=4)
    model.spec = model.spec.replace(frames_per_clip=4, short_side=32, crop_size=32, crop_width=None)
    with torch.no_grad():
        model.module.head[1].weight.zero_()
        model.module.head[1].bias.copy_(torch.tensor([0.3 if i == favourite else 0.0 for i in range(3)]))
    save_checkpoint(model, path, {"model_name": "actionrec"})
    return lake.register_model("actionrec", path, file_version(path), {"created_at": created_at})


def test_the_latest_challenger_disagreements_come_first(prefect_api, tmp_path):
    from flows.tag import tag_flow

    src = tmp_path / "videos"
    src.mkdir()
    for i in range(6):
        write_indexed(src / f"v{i}.mp4", 12)
    lake = Lake(tmp_path / "lake")
    champion = _register(lake, tmp_path / "one" / "model.pt", 0, "2026-11-01T00:00:00+00:00")
    lake.promote("actionrec", champion, reason="test")
    challenger = _register(lake, tmp_path / "two" / "model.pt", 1, "2026-11-02T00:00:00+00:00")
    labeled = (src / "v0.mp4").resolve().as_uri()
    import_answers(str(lake.root), [Answer(labeled, "c", "al")], source="csv", content=b"one answer")

    first = tag_flow(source=str(src), lake=str(lake.root), clips=1, queue_size=3, queue_per_label=0)
    rows = query(str(lake.root), "SELECT video_uri, reason, score, top1_label, model_version FROM labeling_queue "
                                 "ORDER BY rank")[1]
    assert len(rows) == 3 and labeled not in {r[0] for r in rows}
    assert all(r[3] == "a" and r[4] == champion for r in rows)
    assert all(f"disagreement: version {challenger} says 'b'" in r[1] for r in rows)
    assert all(r[2] > 1.0 for r in rows)  # a disagreement outranks any uncertainty

    # a second run over the same archive with a new champion: nothing asked twice
    lake.promote("actionrec", challenger, reason="test")
    second = tag_flow(source=str(src), lake=str(lake.root), clips=1, queue_size=10, queue_per_label=0)
    again = query(str(lake.root), "SELECT video_uri, reason FROM labeling_queue WHERE run_id = ?", [second["run_id"]])[1]
    assert {r[0] for r in again} == {(src / f"v{i}.mp4").resolve().as_uri() for i in range(1, 6)} - {r[0] for r in rows}
    assert all(f"version {champion} says 'a'" in r[1] for r in again)  # the former champion disagrees
    none = tag_flow(source=str(src), lake=str(lake.root), clips=1, queue_size=0)
    assert none["ok"] == 0 and query(str(lake.root), "SELECT count(*) FROM labeling_queue")[1] == [(5,)]
    assert first["ok"] == 6


def test_more_like_the_videos_people_labeled(tmp_path, capsys):
    """A class that needs more examples: queue the unlabeled videos nearest to its labeled ones."""
    from datetime import date

    import numpy as np
    import pyarrow as pa

    from actionrec.cli import main
    from actionrec.lake.schema import EMBEDDINGS

    rng = np.random.default_rng(0)
    centres = {"a": rng.normal(size=16), "b": rng.normal(size=16)}
    rows = []
    for name, centre in centres.items():
        for i in range(4):
            v = centre + rng.normal(scale=0.05, size=16)
            rows.append({"run_id": "r1", "video_uri": f"file:///v/{name}{i}.mp4", "video_etag": "e",
                         "model_name": "m", "model_version": "v1", "dim": 16,
                         "embedding": (v / np.linalg.norm(v)).astype(np.float32).tolist()})
    lake = str(tmp_path / "lake")
    Lake(lake).write_part("embeddings", "r1-00000", date(2026, 11, 27), pa.Table.from_pylist(rows, EMBEDDINGS))
    import_answers(lake, [Answer("file:///v/a0.mp4", "jump", "al"), Answer("file:///v/b0.mp4", "run", "al")],
                   source="csv", content=b"two")
    assert main(["label", "more-like", "jump", "--k", "2", "--lake", lake, "--json"]) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["video_uri"] for r in first} <= {"file:///v/a1.mp4", "file:///v/a2.mp4", "file:///v/a3.mp4"}
    assert len(first) == 2 and all("similar to the videos labeled 'jump'" in r["reason"] for r in first)
    assert main(["label", "more-like", "jump", "--k", "2", "--lake", lake, "--json"]) == 0
    second = [json.loads(line)["video_uri"] for line in capsys.readouterr().out.splitlines()]
    assert second[0] == ({"file:///v/a1.mp4", "file:///v/a2.mp4", "file:///v/a3.mp4"} - {r["video_uri"] for r in first}).pop()
    assert "file:///v/b0.mp4" not in second  # labeled: never queued
    assert main(["label", "more-like", "wave", "--lake", lake]) == 2
