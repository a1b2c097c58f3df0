"""Batched prediction across videos: same answers whatever the batching, bad files become rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionrec.errors import ConfigError
from actionrec.inference.predictor import Predictor
from actionrec.models import build_model

CLASSES = ["c0", "c1", "c2", "c3"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("tiny3d", CLASSES, width=4)
    m.spec = m.spec.replace(frames_per_clip=4, frame_stride=2, short_side=32, crop_size=32)
    m.module.eval()
    return m


def test_results_do_not_depend_on_batching(media, model):
    uris = [str(media[k]) for k in ("mp4", "avi", "mkv", "vfr", "short")]
    one = Predictor(model, batch_size=1, decode_workers=1).predict_all(uris, top_k=3, clips=3)
    many = Predictor(model, batch_size=5, decode_workers=3).predict_all(uris, top_k=3, clips=3)
    assert [r.uri for r in one] == uris
    for a, b in zip(one, many, strict=True):
        assert a.status == b.status == "ok"
        assert a.num_clips == 3 and len(a.clips) == 3
        assert np.allclose(a.probs, b.probs, atol=1e-5)
        assert [x.label for x in a.top_k] == [x.label for x in b.top_k]
        scores = [x.score for x in a.top_k]
        assert scores == sorted(scores, reverse=True) and len(scores) == 3


def test_multi_clip_average_is_mean_of_clip_softmax(media, model):
    (r,) = Predictor(model, batch_size=2).predict_all([str(media["mp4"])], top_k=4, clips=4)
    starts = [c.start_s for c in r.clips]
    assert starts == sorted(starts) and r.clips[-1].end_s <= r.info.duration_s + 1e-9
    clip_probs = {}
    for c in r.clips:
        clip_probs[c.clip_index] = {x.class_id: x.score for x in c.top_k}
    for k in range(4):
        mean = sum(clip_probs[i][k] for i in range(4)) / 4
        assert float(r.probs[k]) == pytest.approx(mean, abs=1e-5)


def test_bad_files_become_failed_rows_and_others_go_on(media, model):
    uris = [str(media[k]) for k in ("empty", "mp4", "text", "png", "audio_only", "truncated_no_moov", "truncated_faststart")]
    uris.append(str(media["mp4"].parent / "does-not-exist.mp4"))
    results = {r.uri: r for r in Predictor(model, batch_size=3).predict(uris, top_k=2)}
    assert len(results) == len(uris)
    assert results[str(media["mp4"])].status == "ok"
    part = results[str(media["truncated_faststart"])]
    assert part.status == "partial" and "truncated" in part.error and part.top_k
    for k in ("empty", "text", "png", "audio_only", "truncated_no_moov"):
        r = results[str(media[k])]
        assert r.status == "failed" and r.error and not r.top_k, k
    assert "not found" in results[uris[-1]].error


def test_config_errors(model):
    with pytest.raises(ConfigError, match="batch_size"):
        Predictor(model, batch_size=0)
    for bad in (float("nan"), float("inf"), 0, -1):  # reported: nan made the pool restart workers forever
        with pytest.raises(ConfigError, match="decode_timeout_s"):
            Predictor(model, decode_timeout_s=bad)
    with pytest.raises(ConfigError, match="clips"):
        list(Predictor(model).predict(["x.mp4"], clips=0))


def test_loaded_model_predict_api(media, model):
    from actionrec.inference.model import Model

    results = Model(model).predict([str(media["avi"])], top_k=2, clips=2)
    assert results[0].status == "ok" and len(results[0].top_k) == 2
    d = results[0].to_dict(timeline=True)
    assert d["top1_label"] in CLASSES and len(d["clips"]) == 2 and d["width"] == 96


def test_only_failures(media, model):
    results = Predictor(model, batch_size=4).predict_all([str(media["empty"]), str(media["text"])])
    assert [r.status for r in results] == ["failed", "failed"]


@pytest.mark.parametrize(("arch", "kwargs"), [("tiny3d", {"width": 4}), ("tsn_resnet18", {})])
def test_channels_last_gives_the_same_answers_and_spares_2d_networks(media, arch, kwargs):
    """channels_last_3d (the GPU default) is a layout, not a model change; 2-D networks keep theirs."""
    torch.manual_seed(0)
    m = build_model(arch, CLASSES, **kwargs)
    m.spec = m.spec.replace(frames_per_clip=4, frame_stride=1, short_side=32, crop_size=32)
    uris = [str(media["mp4"]), str(media["avi"])]
    plain = Predictor(m, batch_size=2, engine="torch", channels_last=False).predict_all(uris, clips=2)
    fast = Predictor(m, batch_size=2, engine="torch", channels_last=True)
    assert fast.runner.channels_last == (arch == "tiny3d")  # TSN's 2-D convolutions have no 3-D layout
    for a, b in zip(plain, fast.predict_all(uris, clips=2), strict=True):
        assert a.status == b.status == "ok"
        assert np.allclose(a.probs, b.probs, atol=1e-5)


def test_torch_compile_pads_the_last_batch_and_matches_eager(media, model, monkeypatch):
    """Compiled with static shapes, a short last batch is padded and its padding never reaches a result."""
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)  # a second shape would raise
    uris = [str(media[k]) for k in ("mp4", "avi", "mkv")]  # 3 videos x 2 clips = batches of 4 and 2
    eager = Predictor(model, batch_size=4, engine="torch", channels_last=False).predict_all(uris, clips=2)
    compiled = Predictor(model, batch_size=4, torch_compile=True)
    assert compiled.runner.channels_last  # compile's measured gain comes with channels_last_3d
    for a, b in zip(eager, compiled.predict_all(uris, clips=2), strict=True):
        assert a.status == b.status == "ok" and a.num_clips == b.num_clips == 2
        assert np.allclose(a.probs, b.probs, atol=1e-4)
