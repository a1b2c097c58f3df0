"""Three-crop testing: each clip is scored on crops at both ends and the centre of the frame's long
side, averaged per clip, then over clips; positions are exact, and one crop is today's centre crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionrec.data.clips import crop_thwc, decode_clips, view_crops_thwc
from actionrec.engines.choice import EngineChoice
from actionrec.engines.runners import open_runner
from actionrec.errors import ConfigError
from actionrec.evaluation.evaluate import evaluate_model
from actionrec.inference.predictor import Predictor
from actionrec.inference.settings import InferenceSettings
from actionrec.models import build_model

FRAMES = np.arange(2 * 6 * 10 * 3, dtype=np.uint8).reshape(2, 6, 10, 3)


@pytest.mark.parametrize("frames,size,views,boxes", [
    (FRAMES, (4, 4), 3, [(1, 0), (1, 3), (1, 6)]),  # landscape: left, centre, right
    (FRAMES.transpose(0, 2, 1, 3), (4, 4), 3, [(0, 1), (3, 1), (6, 1)]),  # portrait: top, centre, bottom
    (FRAMES, (4, 6), 3, [(1, 0), (1, 2), (1, 4)]),
    (FRAMES, (6, 10), 3, [(0, 0)] * 3),  # the crop is the frame
    (FRAMES, (4, 4), 1, [(1, 3)]),  # one view: the centre crop
])
def test_view_crops_sit_at_both_ends_and_the_centre(frames, size, views, boxes):
    crops = view_crops_thwc(frames, size, views)
    assert len(crops) == views
    for crop, (y, x) in zip(crops, boxes, strict=True):
        assert np.array_equal(crop, frames[:, y : y + size[0], x : x + size[1]])
    if views == 1:
        assert np.array_equal(crops[0], crop_thwc(frames, size))


def test_a_frame_smaller_than_the_crop_is_padded_once():
    crops = view_crops_thwc(FRAMES, (8, 12), 3)
    assert all(c.shape == (2, 8, 12, 3) and np.array_equal(c, crops[0]) for c in crops)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("tiny3d", ["c0", "c1", "c2"], width=4)
    m.spec = m.spec.replace(frames_per_clip=4, sampling="stride", sample_fps=None, frame_stride=2, short_side=32,
                            crop_size=32)
    m.module.eval()
    return m


def test_three_crops_average_per_clip_then_over_clips(media, model):
    uri = str(media["mp4"])  # wider than tall: the crops move along the width
    (r,) = Predictor(model, batch_size=4, decode_workers=1).predict_all([uri], top_k=3, clips=2, crops=3)
    assert r.status == "ok" and r.num_clips == 2 and len(r.clips) == 2
    decoded = decode_clips(uri, model.spec, 2, 3)
    assert decoded.clips_nthwc.shape[0] == 6 and decoded.views == 3
    assert not np.array_equal(decoded.clips_nthwc[0], decoded.clips_nthwc[1])
    probs = open_runner(model, EngineChoice("openvino", "f32", "cpu")).run(decoded.clips_nthwc)
    per_clip = probs.reshape(2, 3, -1).mean(axis=1)
    assert np.allclose(r.probs, per_clip.mean(axis=0), atol=1e-5)
    for c, expected in zip(r.clips, per_clip, strict=True):
        assert np.isclose(c.top_k[0].score, expected.max(), atol=1e-5)
    (one,) = Predictor(model, decode_workers=1).predict_all([uri], clips=2)
    centre = open_runner(model, EngineChoice("openvino", "f32", "cpu")).run(decode_clips(uri, model.spec, 2).clips_nthwc)
    assert np.allclose(one.probs, centre.mean(axis=0), atol=1e-5)


def test_evaluation_says_how_many_crops(media, model):
    from actionrec.data.labels import LabeledVideo

    rows = [LabeledVideo(str(media["mp4"]), "c0", "test"), LabeledVideo(str(media["mkv"]), "c1", "test")]
    ev = evaluate_model(model, rows, clips=1, crops=3, decode_workers=1)
    assert ev.to_dict()["crops_per_clip"] == 3 and ev.result.num_videos == 2


@pytest.mark.parametrize("crops", [0, 2, 4, True, 1.0])
def test_crops_are_one_or_three(crops):
    with pytest.raises(ConfigError, match="crops"):
        InferenceSettings(crops=crops)
