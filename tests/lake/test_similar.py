"""Find more like this: embeddings written by the tag flow, and nearest neighbours by cosine
similarity in DuckDB, checked on vectors whose neighbours are known."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa
import pytest
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.cli import main
from actionrec.errors import ConfigError
from actionrec.lake.lake import Lake
from actionrec.lake.query import connect, query
from actionrec.lake.schema import EMBEDDINGS, LABELS
from actionrec.lake.similar import NoEmbeddingError, more_like, similar

DIM = 48
CLUSTERS, MATES = 5, 6


def _rows(uris: list[str], vectors: np.ndarray, run_id: str, version: str = "v1", name: str = "m") -> pa.Table:
    return pa.Table.from_pylist([
        {"run_id": run_id, "video_uri": u, "video_etag": f"etag-{u[-6:]}", "model_name": name,
         "model_version": version, "dim": len(v), "embedding": v.astype(np.float32)}
        for u, v in zip(uris, vectors, strict=True)], EMBEDDINGS)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """Five tight clusters of six vectors around random centres (nearly orthogonal in 48 dimensions)
    plus 20 loners, in two files; then, for the same videos, an older run with other vectors, a
    second model version and a second model name, none of which may ever be compared."""
    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((CLUSTERS, DIM)))
    noise = rng.standard_normal((CLUSTERS, MATES, DIM))
    scale = np.linspace(0.05, 0.4, MATES)[None, :, None]  # mate j drifts further from its centre than j-1
    members = _unit(centres[:, None, :] + scale * _unit(noise))
    loners = _unit(rng.standard_normal((20, DIM)))
    uris = [f"s3://archive/c{c}/m{j}.mp4" for c in range(CLUSTERS) for j in range(MATES)]
    loner_uris = [f"s3://archive/loner/{i:02d}.mp4" for i in range(20)]
    vectors = np.concatenate([members.reshape(-1, DIM), loners])
    all_uris = uris + loner_uris
    lake = Lake(tmp_path_factory.mktemp("lake"))
    day = date(2025, 3, 2)
    old = "20250301T000000Z-00000000"  # an earlier run: every vector scrambled
    lake.write_part("embeddings", f"{old}-00000", date(2025, 3, 1),
                    _rows(all_uris, _unit(rng.standard_normal((len(all_uris), DIM))), old))
    run = "20250302T000000Z-11111111"
    half = len(all_uris) // 2
    lake.write_part("embeddings", f"{run}-00000", day, _rows(all_uris[:half], vectors[:half], run))
    lake.write_part("embeddings", f"{run}-00001", day, _rows(all_uris[half:], vectors[half:], run))
    # A later run of version v2 and one of another model, each pointing every video elsewhere: a query
    # in v1 must never see them, however recent.
    later, last = "20250303T000000Z-22222222", "20250304T000000Z-33333333"
    lake.write_part("embeddings", f"{later}-00000", date(2025, 3, 3),
                    _rows(all_uris[:10], _unit(rng.standard_normal((10, DIM))), later, version="v2"))
    lake.write_part("embeddings", f"{last}-00000", date(2025, 3, 4),
                    _rows(all_uris, _unit(rng.standard_normal((len(all_uris), 16))), last, name="other"))
    return lake.root, all_uris, vectors


def _expected(vectors: np.ndarray, uris: list[str], query_vec: np.ndarray, skip: set[str]) -> list[str]:
    scores = vectors @ _unit(query_vec)
    order = sorted((u for u in uris if u not in skip), key=lambda u: (-scores[uris.index(u)], u))
    return order


def test_similar_returns_exactly_the_cluster_mates_in_order(clustered):
    root, uris, vectors = clustered
    for c in range(CLUSTERS):
        q = f"s3://archive/c{c}/m0.mp4"
        found = similar(root, q, k=MATES - 1, model_name="m", model_version="v1")
        mates = {f"s3://archive/c{c}/m{j}.mp4" for j in range(1, MATES)}
        assert {n.video_uri for n in found} == mates  # all five mates, nothing else, not the video itself
        assert [n.video_uri for n in found] == _expected(vectors, uris, vectors[uris.index(q)], {q})[: MATES - 1]
        scores = [n.score for n in found]
        assert scores == sorted(scores, reverse=True) and all(0.5 < s <= 1.0 + 1e-6 for s in scores)
        want = vectors[[uris.index(n.video_uri) for n in found]] @ vectors[uris.index(q)]
        assert np.allclose(scores, want, atol=1e-5)
        assert {(n.model_name, n.model_version) for n in found} == {("m", "v1")}
    # Without a model named, the video's latest embedding decides: here "other" (run of 2025-03-04).
    assert {n.model_name for n in similar(root, "s3://archive/c0/m0.mp4", k=3)} == {"other"}
    # In v2 only ten videos have vectors, and random ones: the answer comes from those ten only.
    in_v2 = similar(root, "s3://archive/c0/m0.mp4", k=20, model_name="m", model_version="v2")
    assert {n.video_uri for n in in_v2} == set(uris[1:10])


def test_a_vector_query_and_the_k_bound(clustered):
    root, uris, vectors = clustered
    probe = vectors[uris.index("s3://archive/c3/m2.mp4")] * 3.0  # the length does not matter
    found = similar(root, probe, k=MATES, model_name="m", model_version="v1")
    assert {n.video_uri for n in found} == {f"s3://archive/c3/m{j}.mp4" for j in range(MATES)}
    assert found[0].video_uri == "s3://archive/c3/m2.mp4" and found[0].score == pytest.approx(1.0, abs=1e-5)
    # A bare vector of length 48 belongs to model "m" alone; its latest version (v2) is used unless named.
    assert {n.model_version for n in similar(root, probe, k=2)} == {"v2"}
    assert len(similar(root, probe, k=1000, model_version="v1")) == len(uris)
    with pytest.raises(NoEmbeddingError, match="length 7"):
        similar(root, np.ones(7), k=3)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ConfigError, match="k must be"):
            similar(root, probe, k=bad)


def test_more_like_skips_labeled_examples_and_excluded(clustered, tmp_path):
    root, uris, vectors = clustered
    examples = ["s3://archive/c1/m0.mp4", "s3://archive/c4/m0.mp4"]
    lake_copy = tmp_path / "lake"
    shutil.copytree(root, lake_copy)
    Lake(lake_copy).write_part("labels", "import-1", date(2025, 3, 4), pa.Table.from_pylist([
        {"video_uri": "s3://archive/c1/m1.mp4", "label": "x", "source": "csv", "annotator": "a",
         "labeled_at": datetime(2025, 3, 4, tzinfo=timezone.utc), "import_id": "import-1", "labels_version": "1",
         "task_id": None}], LABELS))
    with connect(lake_copy) as con:  # one connection for several calls, as a queue would
        by_max = more_like(lake_copy, examples, k=2 * (MATES - 1) - 1, model_name="m", model_version="v1", con=con)
        assert {n.video_uri for n in by_max} == ({f"s3://archive/c1/m{j}.mp4" for j in range(2, MATES)}
                                                 | {f"s3://archive/c4/m{j}.mp4" for j in range(1, MATES)})
        ex = vectors[[uris.index(u) for u in examples]]
        want = (vectors @ ex.T).max(axis=1)
        assert np.allclose([n.score for n in by_max], want[[uris.index(n.video_uri) for n in by_max]], atol=1e-5)
        by_mean = more_like(lake_copy, examples, k=4, model_name="m", model_version="v1", how="mean", con=con,
                            exclude=["s3://archive/c4/m1.mp4"], include_labeled=True)
        centre = _unit(ex.mean(axis=0))
        assert [n.video_uri for n in by_mean] == _expected(vectors, uris, centre,
                                                           set(examples) | {"s3://archive/c4/m1.mp4"})[:4]
        # Examples embedded last by another model: the version is that of their latest embedding.
        assert {n.model_name for n in more_like(lake_copy, examples, k=3, con=con)} == {"other"}
        # Within "m", c1/m0 was embedded last by v2 and c4/m0 never was: v2, from c1/m0 alone.
        in_v2 = more_like(lake_copy, examples, k=20, model_name="m", include_labeled=True, con=con)
        assert {n.model_version for n in in_v2} == {"v2"} and len(in_v2) == 10 - 1
        with pytest.raises(NoEmbeddingError, match="none of the 2 example videos"):
            more_like(lake_copy, ["s3://nowhere/a.mp4", "s3://nowhere/b.mp4"], k=3, con=con)
        with pytest.raises(ConfigError, match="how must be"):
            more_like(lake_copy, examples, how="median", con=con)


def test_latest_embeddings_view_keeps_one_row_per_video_and_version(clustered):
    root, uris, _ = clustered
    rows = query(root, "SELECT model_name, model_version, count(*), count(DISTINCT video_uri), min(run_id) "
                       "FROM latest_embeddings GROUP BY 1, 2 ORDER BY 1, 2")[1]
    assert rows == [("m", "v1", len(uris), len(uris), "20250302T000000Z-11111111"),
                    ("m", "v2", 10, 10, "20250303T000000Z-22222222"),
                    ("other", "v1", len(uris), len(uris), "20250304T000000Z-33333333")]


@pytest.fixture(scope="module")
def tagged(prefect_api, tmp_path_factory):
    """A real tag run with embeddings over five tiny videos, one of them a byte copy of another and one
    not a video; tagged first without embeddings, so the second run must take them all again."""
    from flows.tag import tag_flow

    tmp = tmp_path_factory.mktemp("tagged")
    src = tmp / "archive"
    src.mkdir()
    for i, colour in enumerate([(120, 0, 0), (0, 120, 0), (0, 0, 120), (90, 90, 0)]):
        write_indexed(src / f"v{i}.mp4", 12 + 7 * i, fps=12, background=colour)
    shutil.copy(src / "v1.mp4", src / "v1-copy.mp4")
    (src / "broken.mp4").write_text("not a video")
    ckpt = write_tiny_checkpoint(tmp / "model" / "model.pt", ["a", "b", "c"], name="tiny")
    lake = str(tmp / "lake")
    plain = tag_flow(source=str(src), lake=lake, model=str(ckpt), clips=2, shard_size=3)
    assert (plain["ok"], plain["failed"]) == (5, 1) and not Lake(lake).embedded("tiny", plain["model_version"])
    row = tag_flow(source=str(src), lake=lake, model=str(ckpt), clips=2, shard_size=3, embeddings=True)
    assert (row["ok"], row["failed"], row["videos_skipped"]) == (5, 1, 0)  # done, but without vectors: again
    again = tag_flow(source=str(src), lake=lake, model=str(ckpt), clips=2, shard_size=3, embeddings=True)
    assert (again["ok"], again["videos_skipped"]) == (0, 5)
    return lake, src, row


def test_the_tag_flow_stores_normalised_vectors_and_similar_finds_the_copy(tagged, capsys):
    lake, src, row = tagged
    cols, rows = query(lake, "SELECT video_uri, dim, len(embedding), embedding, model_name, model_version, run_id "
                             "FROM embeddings ORDER BY video_uri")
    assert len(rows) == 5 and not any(r[0].endswith("broken.mp4") for r in rows)  # a failed video has no vector
    assert {r[1] for r in rows} == {r[2] for r in rows} == {32}  # tiny3d width 4: 8 * 4 features
    assert all(abs(np.linalg.norm(np.asarray(r[3])) - 1) < 1e-5 for r in rows)
    assert {(r[4], r[5], r[6]) for r in rows} == {("tiny", row["model_version"], row["run_id"])}
    assert len(list((src.parent / "lake" / "embeddings").rglob("*.parquet"))) == 2  # one file per shard

    capsys.readouterr()
    assert main(["similar", str(src / "v1.mp4"), "--lake", lake, "--k", "3", "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [f["rank"] for f in found] == [1, 2, 3], found
    assert found[0]["video_uri"] == (src / "v1-copy.mp4").resolve().as_uri(), found  # the same bytes: the nearest
    assert found[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert all(f["video_uri"] != (src / "v1.mp4").resolve().as_uri() for f in found)
    assert main(["similar", str(src / "v2.mp4"), "--lake", lake, "--model", f"tiny@{row['model_version']}"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["rank", "score", "video_uri"] and len(table) == 2 + 4  # header, rule, 4 others


def test_similar_says_how_to_get_an_embedding(tagged, capsys, tmp_path):
    lake, src, _ = tagged
    capsys.readouterr()
    assert main(["similar", str(src / "broken.mp4"), "--lake", lake]) == 2
    err = capsys.readouterr().err
    assert "broken.mp4 has no embedding by any model" in err and "--embeddings" in err and len(err.splitlines()) == 1
    assert main(["similar", str(src / "v1.mp4"), "--lake", lake, "--model", "nosuch"]) == 2
    assert "no embedding by nosuch" in capsys.readouterr().err
    assert main(["similar", str(src / "v1.mp4"), "--lake", str(tmp_path / "nolake")]) == 2
    assert "no lake at" in capsys.readouterr().err
    assert main(["similar", str(src / "v1.mp4"), "--lake", lake, "--k", "0"]) == 2


def test_torch_and_openvino_embeddings_agree(media, tmp_path):
    from actionrec.engines.choice import EngineChoice
    from actionrec.engines.runners import open_runner
    from actionrec.inference.predictor import Predictor
    from actionrec.models.refs import load_model

    model = load_model(str(write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b", "c"])))
    videos = [str(media[k]) for k in ("mp4", "avi", "mkv", "text")]
    got = {}
    for engine in ("torch", "openvino"):
        runner = open_runner(model, EngineChoice(engine, "f32", "cpu"), batch_size=4)
        got[engine] = Predictor(runner, batch_size=4, decode_backend="thread").predict_all(
            videos, clips=3, crops=3, embeddings=True)
    for t, o in zip(got["torch"], got["openvino"], strict=True):
        if t.status == "failed":
            assert t.embedding is None and o.embedding is None
            continue
        assert t.embedding.dtype == np.float32 and t.embedding.shape == o.embedding.shape == (32,)
        assert abs(np.linalg.norm(t.embedding) - 1) < 1e-5 and abs(np.linalg.norm(o.embedding) - 1) < 1e-5
        assert float(t.embedding @ o.embedding) > 0.99
    plain = Predictor(open_runner(model, EngineChoice("torch", "f32", "cpu"), batch_size=4), batch_size=4,
                      decode_backend="thread").predict_all(videos[:1], clips=3)
    assert plain[0].embedding is None  # not asked for: not computed
