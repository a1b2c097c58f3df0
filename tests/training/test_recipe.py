"""The small-real-set recipe: scale and aspect jitter, mirrors that keep labels right, several clips
per video per epoch, mixup; each is exact where it can be and repeatable where it is random."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from actionrec.data.datasets import ClipDataset
from actionrec.data.labels import read_labels
from actionrec.data.spec import InputSpec
from actionrec.data.synth import SynthConfig, write_dataset
from actionrec.data.transforms import mirror_rule, random_resized_crop
from actionrec.errors import ConfigError
from actionrec.training.config import TrainConfig
from actionrec.training.loop import train

SMALL_SPEC = {"frames_per_clip": 8, "frame_stride": 2, "short_side": 32, "crop_size": 32, "crop_width": None}


@pytest.mark.parametrize("mode,declared,classes,expected", [
    ("auto", None, ["fight", "no_fight"], {}),  # mirror, labels unchanged
    ("auto", None, ["swiping left", "swiping right"], None),  # a direction in a name: no mirror unless declared
    ("auto", None, ["turn_clockwise", "wave"], None),
    ("auto", None, ["Rightward", "x"], None),
    ("auto", None, ["bright", "playing guitar"], {}),  # a word, not a substring
    ("auto", {"swiping left": "swiping right", "swiping right": "swiping left"}, ["swiping left", "swiping right"],
     {"swiping left": "swiping right", "swiping right": "swiping left"}),
    ("auto", {"a": "elsewhere"}, ["a", "b"], None),  # a declared rule leaving the classes is not applied
    ("declared", None, ["fight", "no_fight"], None),
    ("declared", {}, ["fight", "no_fight"], {}),
    ("off", {"a": "b", "b": "a"}, ["a", "b"], None),
])
def test_mirror_rule(mode, declared, classes, expected):
    assert mirror_rule(mode, declared, classes) == expected


def test_random_resized_crop_keeps_one_box_for_the_whole_clip():
    t, h, w = 6, 40, 72
    frames = np.broadcast_to(np.arange(t, dtype=np.uint8)[:, None, None, None] * 40, (t, h, w, 3)).copy()
    frames[:, :, : w // 2] += 1  # a left half that differs: which half the box took shows in every frame alike
    sizes = set()
    for seed in range(20):
        out = random_resized_crop(frames, 32, random.Random(seed), min_scale=0.5)
        assert out.shape == (t, 32, 32, 3) and out.dtype == np.uint8
        assert np.array_equal(out - out[:1], (frames[:, :32, :32] - frames[:1, :32, :32]))  # time kept frame by frame
        sizes.add(int((out[0, 0, :, 0] == out[0, 0, 0, 0]).sum()))
    assert len(sizes) > 1  # the box moves and changes size between draws


def test_repeats_draw_each_video_several_times_at_different_places(tmp_path):
    labels = read_labels(write_dataset(tmp_path, SynthConfig(per_class=1, seed=2, size=32, num_frames=32, fps=16)))
    items = [(r.uri, i) for i, r in enumerate(labels.rows)]
    spec = InputSpec(**SMALL_SPEC, sample_fps=None, sampling="stride")
    data = ClipDataset(items, spec, train=True, repeats=3, min_crop_scale=0.5)
    assert len(data) == 3 * len(items)
    n = len(items)
    first, again = data[0], data[n]
    assert first[1] == again[1] and not torch.equal(first[0], again[0])
    assert len(ClipDataset(items, spec, train=False, repeats=3)) == n  # evaluation sees each video once


@pytest.fixture(scope="module")
def tiny_labels(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    table = read_labels(write_dataset(out, SynthConfig(per_class=4, seed=5, size=32, num_frames=16, fps=16,
                                                       val_fraction=0.25)))
    keep = ("growing", "shrinking")
    return dataclasses.replace(table, rows=tuple(r for r in table.rows if r.label in keep), classes=keep)


def test_the_recipe_trains_and_repeats(tiny_labels):
    cfg = TrainConfig(arch="motion3d", epochs=2, batch_size=4, seed=1, arch_kwargs={"width": 4},
                      spec_overrides=SMALL_SPEC, clips_per_video=2, mixup=0.4, min_crop_scale=0.6)
    a = train(cfg, tiny_labels, progress=False)
    b = train(cfg, tiny_labels, progress=False)
    sa, sb = a.model.module.state_dict(), b.model.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(np.isfinite(h.train_loss) for h in a.history)
    recorded = a.model.provenance["train_config"]
    assert (recorded["clips_per_video"], recorded["mixup"], recorded["min_crop_scale"]) == (2, 0.4, 0.6)
    plain = train(dataclasses.replace(cfg, mixup=0.0), tiny_labels, progress=False).model.module.state_dict()
    assert not all(torch.equal(sa[k], plain[k]) for k in sa)  # mixup changed what was learned


@pytest.mark.parametrize("field,value", [("clips_per_video", 0), ("clips_per_video", 1.5), ("mixup", -0.1),
                                         ("mixup", float("nan")), ("min_crop_scale", 0.0), ("min_crop_scale", 1.2),
                                         ("hflip", "sometimes")])
def test_recipe_options_are_checked(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_a_wide_crop_keeps_the_frame_width_through_training_inference_and_openvino(tiny_labels, tmp_path):
    """A spec with ``crop_width``: training clips, decoded clips, the torch model and its OpenVINO
    conversion all see (crop_size x crop_width) frames."""
    from actionrec.data.clips import decode_clips
    from actionrec.engines.choice import EngineChoice
    from actionrec.engines.runners import open_runner
    from actionrec.models import load_model

    wide = {**SMALL_SPEC, "crop_width": 48}
    cfg = TrainConfig(arch="motion3d", epochs=1, batch_size=4, arch_kwargs={"width": 4}, spec_overrides=wide,
                      min_crop_scale=0.7)
    model = train(cfg, tiny_labels, out=tmp_path / "wide.pt", progress=False).model
    assert model.spec.crop_hw == (32, 48)
    model = load_model(tmp_path / "wide.pt")
    assert model.spec.clip_shape == (8, 32, 48, 3)
    decoded = decode_clips(tiny_labels.rows[0].uri, model.spec, 2)
    assert decoded.clips_nthwc.shape == (2, 8, 32, 48, 3)
    torch_probs = open_runner(model, EngineChoice("torch", "f32", "cpu")).run(decoded.clips_nthwc)
    ov_probs = open_runner(model, EngineChoice("openvino", "f32", "cpu")).run(decoded.clips_nthwc)
    assert np.abs(torch_probs - ov_probs).max() < 1e-4


@pytest.mark.parametrize("size,expected", [(4, (4, 4)), ((4, 6), (4, 6)), ((8, 6), (8, 6)), ((4, 12), (4, 12))])
def test_crop_thwc_takes_a_height_and_a_width(size, expected):
    from actionrec.data.clips import crop_thwc

    frames = np.arange(2 * 6 * 10 * 3, dtype=np.uint8).reshape(2, 6, 10, 3)
    out = crop_thwc(frames, size)
    assert out.shape[1:3] == expected
    if expected[0] <= 6 and expected[1] <= 10:  # centred
        top, left = (6 - expected[0]) // 2, (10 - expected[1]) // 2
        assert np.array_equal(out, frames[:, top : top + expected[0], left : left + expected[1]])


@pytest.mark.parametrize("width", [0, -3, 2.5, True])
def test_crop_width_is_checked(width):
    with pytest.raises(ConfigError, match="crop_width"):
        InputSpec(crop_width=width)
