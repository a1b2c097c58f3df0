"""Training learns the synthetic temporal pairs on CPU; configs fail early; augmentations know labels."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
import torch

from actionrec.data.labels import LabeledVideo, read_labels
from actionrec.data.synth import SynthConfig, write_dataset
from actionrec.data.transforms import LabelAwareAugment, applicable
from actionrec.errors import ConfigError, DataError
from actionrec.models import load_model
from actionrec.training.config import TrainConfig
from actionrec.training.loop import train
from actionrec.training.losses import FocalLoss, class_weights

SMALL_SPEC = {"frames_per_clip": 8, "frame_stride": 2, "short_side": 32, "crop_size": 32, "crop_width": None}
FOUR = ("growing", "moving left", "moving right", "shrinking")


@pytest.fixture(scope="module")
def small_labels(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    table = read_labels(write_dataset(out, SynthConfig(per_class=12, seed=5, size=32, num_frames=16, fps=16, val_fraction=0.2)))
    rows = tuple(r for r in table.rows if r.label in FOUR)
    return dataclasses.replace(table, rows=rows, classes=FOUR)


def test_training_learns_on_cpu(small_labels, tmp_path):
    cfg = TrainConfig(arch="tiny3d", epochs=40, batch_size=8, seed=0, arch_kwargs={"width": 8},
                      spec_overrides=SMALL_SPEC)
    result = train(cfg, small_labels, out=tmp_path / "model.pt", progress=False)
    first, last = result.history[0], result.history[-1]
    assert last.train_loss < 0.5 * first.train_loss
    assert max(h.train_top1 for h in result.history[-3:]) >= 0.75  # chance is 0.25
    assert result.best_val_top1 >= 0.6  # held-out videos, incl. both members of the left/right pair
    model = load_model(str(tmp_path / "model.pt"))
    assert model.classes == list(FOUR) and model.spec.frames_per_clip == 8
    assert model.provenance["labels_sha256"] == small_labels.sha256
    assert model.provenance["epochs_run"] == 40


def test_training_is_repeatable_on_cpu(small_labels):
    cfg = TrainConfig(epochs=1, batch_size=8, seed=3, arch_kwargs={"width": 4}, spec_overrides=SMALL_SPEC)
    a = train(cfg, small_labels, progress=False).model.module.state_dict()
    b = train(cfg, small_labels, progress=False).model.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fine_tune_from_checkpoint_with_new_classes(small_labels, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=8, arch_kwargs={"width": 4}, spec_overrides=SMALL_SPEC)
    base = train(cfg, small_labels, out=tmp_path / "base.pt", progress=False).model
    two = dataclasses.replace(small_labels, rows=tuple(r for r in small_labels.rows if r.label in FOUR[1:3]),
                              classes=FOUR[1:3])
    init = load_model(str(tmp_path / "base.pt"))
    frozen = dataclasses.replace(cfg, freeze_backbone=True)
    tuned = train(frozen, two, init=init, progress=False).model
    assert tuned.classes == list(FOUR[1:3])
    body = "features.0.0.weight"
    assert torch.equal(tuned.module.state_dict()[body], base.module.state_dict()[body])  # frozen backbone
    assert tuned.module.head[1].out_features == 2


@pytest.mark.parametrize("field,value", [("epochs", 0), ("optimizer", "adam"), ("loss", "mse"), ("lr", 0.0),
                                         ("label_smoothing", 1.0), ("batch_size", 0)])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_label_aware_augment_swaps_declared_labels():
    classes = ("moving left", "moving right", "growing")
    aug = LabelAwareAugment(classes, hflip={"moving left": "moving right", "moving right": "moving left"},
                            reverse=None, p=1.0)
    frames = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    out, label = aug(frames, 0, random.Random(0))
    assert label == 1 and np.array_equal(out, frames[:, :, ::-1])
    out, label = aug(frames, 2, random.Random(0))
    assert label == 2  # unchanged class, but flipped pixels
    with pytest.raises(ConfigError, match="hflip"):
        LabelAwareAugment(classes, hflip={"moving left": "jumping"})
    assert applicable({"moving left": "jumping"}, classes) is None
    assert applicable({"jumping": "falling", "growing": "growing"}, classes) == {"growing": "growing"}


def test_focal_loss_and_class_weights():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.5]])
    target = torch.tensor([0, 1])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    focal = FocalLoss(gamma=2.0)(logits, target)
    p = torch.softmax(logits, -1)[[0, 1], [0, 1]]
    assert focal.item() == pytest.approx(((1 - p) ** 2 * ce).mean().item(), rel=1e-5)
    assert FocalLoss(gamma=0.0)(logits, target).item() == pytest.approx(ce.mean().item(), rel=1e-5)
    w = class_weights([0, 0, 0, 1], 3)
    assert w[2] == 0 and w[1] == pytest.approx(3 * w[0])


class _Killed(Exception):
    pass


@pytest.mark.parametrize("mixup", [0.0, 0.4])
def test_resume_after_a_crash_ends_where_an_uninterrupted_run_ends(small_labels, tmp_path, mixup):
    """Training killed right after epoch 2, then resumed, gives the very weights and history of a
    run that was never interrupted (same config, same seed; mixup's draws included)."""
    cfg = TrainConfig(epochs=4, batch_size=8, seed=4, arch_kwargs={"width": 4}, spec_overrides=SMALL_SPEC,
                      mixup=mixup)
    whole = train(cfg, small_labels, progress=False, state_path=tmp_path / "whole.state.pt")

    def crash_after_epoch_2(log):
        if log.epoch == 2:
            raise _Killed

    state = tmp_path / "crashed.state.pt"
    with pytest.raises(_Killed):
        train(cfg, small_labels, progress=False, state_path=state, on_epoch=crash_after_epoch_2)
    seen = []
    resumed = train(cfg, small_labels, progress=False, state_path=state, on_epoch=lambda log: seen.append(log.epoch))
    assert seen == [3, 4]  # epochs 1-2 were not trained again
    assert [dataclasses.astuple(h)[:5] for h in resumed.history] == [dataclasses.astuple(h)[:5] for h in whole.history]
    a, b = whole.model.module.state_dict(), resumed.model.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = dataclasses.replace(cfg, lr=1e-3)
    with pytest.raises(ConfigError, match="resume"):
        train(other, small_labels, progress=False, state_path=state)


def test_sgd_gets_sgd_defaults_everywhere():
    """Bug: ``retrain --optimizer sgd`` trained with AdamW's learning rate and weight decay."""
    from actionrec.cli import build_parser, options_from
    from flows.cli import add_commands
    from flows.params import TrainOptions, train_config

    direct = TrainConfig(optimizer="sgd")
    assert (direct.effective_lr, direct.effective_weight_decay) == (0.01, 1e-4)
    assert (TrainConfig().effective_lr, TrainConfig().effective_weight_decay) == (2e-3, 0.05)
    parser = build_parser([add_commands])
    for argv in (["retrain", "--labels", "x.csv", "--optimizer", "sgd"], ["train", "--labels", "x.csv", "--out", "m.pt",
                                                                         "--optimizer", "sgd"]):
        cfg = TrainConfig(**options_from(parser.parse_args(argv), TrainConfig))
        assert (cfg.effective_lr, cfg.effective_weight_decay) == (0.01, 1e-4), argv
    flow_cfg = train_config(TrainOptions(optimizer="sgd"))
    assert (flow_cfg.effective_lr, flow_cfg.effective_weight_decay) == (0.01, 1e-4)
    assert TrainConfig(optimizer="sgd", lr=0.05).effective_lr == 0.05


def test_unreadable_training_videos_are_skipped_and_listed(small_labels, tmp_path):
    """Bug: one unreadable training video aborted training, while tagging and evaluation turn bad
    videos into rows. Now it is skipped with its reason, up to a stated share."""
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    broken = dataclasses.replace(small_labels, rows=(*small_labels.rows,
                                                      LabeledVideo(bad.as_uri(), FOUR[0], "train")))
    cfg = TrainConfig(epochs=1, batch_size=8, arch_kwargs={"width": 4}, spec_overrides=SMALL_SPEC)
    result = train(cfg, broken, out=tmp_path / "model.pt", progress=False)
    assert [(s["uri"], s["split"]) for s in result.skipped] == [(bad.as_uri(), "train")]
    assert "not a video" in result.skipped[0]["reason"]
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["provenance"]["skipped_videos"] == result.skipped
    many = dataclasses.replace(small_labels, rows=(*small_labels.rows, *(
        LabeledVideo((tmp_path / f"gone{i}.mp4").as_uri(), FOUR[0], "train") for i in range(5))))
    with pytest.raises(DataError, match="cannot be read"):
        train(cfg, many, progress=False)
    assert train(dataclasses.replace(cfg, max_skipped_share=0.5), many, progress=False).skipped
