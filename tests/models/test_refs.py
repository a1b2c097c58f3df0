"""Model references: one grammar, one parser; pinning without loading; pretrained input specs
taken from the weights' own metadata."""

from __future__ import annotations

import os
import shutil

import pytest
from checkpoints import write_tiny_checkpoint

from actionrec.errors import ConfigError, ModelError
from actionrec.models.refs import load_model, parse_model_ref, pin_model


@pytest.fixture()
def in_tmp(tmp_path):
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def test_parse_table(in_tmp):
    (in_tmp / "dir").mkdir()
    write_tiny_checkpoint(in_tmp / "dir" / "model.pt", ["a", "b"])
    (in_tmp / "actionrec").mkdir()  # a folder named like the default model (the project's own checkout)
    cases = {
        "torchvision:r3d_18": ("torchvision", "", "r3d_18", "KINETICS400_V1"),
        "torchvision:s3d:KINETICS400_V1": ("torchvision", "", "s3d", "KINETICS400_V1"),
        "s3://bucket/models/m.pt": ("s3", "s3://bucket/models/m.pt", "", None),
        "./dir": ("file", str(in_tmp / "dir" / "model.pt"), "", None),
        "dir": ("file", str(in_tmp / "dir" / "model.pt"), "", None),
        "dir/model.pt": ("file", str(in_tmp / "dir" / "model.pt"), "", None),
        (in_tmp / "dir").as_uri(): ("file", str(in_tmp / "dir" / "model.pt"), "", None),
        "missing.pt": ("file", str(in_tmp / "missing.pt"), "", None),
        "actionrec": ("registry", "", "actionrec", None),  # a folder without model.pt is not a checkpoint
        "actionrec@0123456789ab": ("registry", "", "actionrec", "0123456789ab"),
    }
    for text, (kind, location, name, version) in cases.items():
        r = parse_model_ref(text)
        assert (r.kind, r.location, r.name, r.version) == (kind, location, name, version), text


@pytest.mark.parametrize("text", ["", "torchvision:", "torchvision:a:b:c", "bad name", "name@..", "na$me"])
def test_parse_refuses_what_cannot_be_a_reference(text):
    with pytest.raises(ConfigError):
        parse_model_ref(text)


def test_a_folder_is_the_same_model_for_pinning_and_loading(in_tmp):
    """Bug: ``tag --model ./dir`` failed where ``predict --model ./dir`` worked: two parsers."""
    write_tiny_checkpoint(in_tmp / "dir" / "model.pt", ["a", "b"], name="folder-model")
    pinned = pin_model("./dir")
    loaded = load_model("./dir")
    assert (pinned.name, pinned.version) == (loaded.name, loaded.version) == ("folder-model", loaded.version)
    assert load_model(pinned).version == pinned.version


def test_a_pinned_checkpoint_replaced_mid_run_is_refused(tmp_path):
    path = write_tiny_checkpoint(tmp_path / "m" / "model.pt", ["a", "b"])
    pinned = pin_model(str(path))
    write_tiny_checkpoint(tmp_path / "other" / "model.pt", ["a", "b", "c"])
    shutil.copy(tmp_path / "other" / "model.pt", path)
    with pytest.raises(ModelError, match="changed since the run started"):
        load_model(pinned)


def test_registry_names_pin_to_the_champion(tmp_path):
    from actionrec.lake.lake import Lake
    from actionrec.models.card import file_version

    lake = Lake(tmp_path / "lake")
    with pytest.raises(ModelError, match="no champion"):
        pin_model("actionrec", tmp_path / "lake")
    ckpt = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    version = lake.register_model("actionrec", ckpt, file_version(ckpt))
    lake.promote("actionrec", version, reason="test")
    pinned = pin_model("actionrec", tmp_path / "lake")
    assert (pinned.ref, pinned.name, pinned.version) == (f"actionrec@{version}", "actionrec", version)
    assert load_model(pinned, lake=tmp_path / "lake").classes == ["a", "b"]
    with pytest.raises(ModelError, match="not in lake"):
        pin_model("actionrec@000000000000", tmp_path / "lake")


@pytest.mark.parametrize("arch,frames,fps,short,crop", [
    ("r3d_18", 16, 15.0, 128, 112), ("r2plus1d_18", 16, 15.0, 128, 112), ("mc3_18", 16, 15.0, 128, 112),
    ("s3d", 128, 15.0, 256, 224), ("mvit_v2_s", 16, 7.5, 256, 224), ("swin3d_t", 32, 15.0, 256, 224),
])
def test_pretrained_input_specs_are_the_published_evaluation_settings(arch, frames, fps, short, crop):
    """Bug: mvit_v2_s, swin3d_t and s3d were fed clips unlike the ones their weights were evaluated on.
    The figures in the table are the ones torchvision's weights metadata states."""
    import torchvision.models.video as tvv

    from actionrec.models.architectures import get_architecture

    spec = get_architecture(arch).spec_for("KINETICS400_V1")
    assert (spec.frames_per_clip, spec.sampling, spec.sample_fps, spec.short_side, spec.crop_size) == (
        frames, "fps", fps, short, crop)
    enum = {"r3d_18": tvv.R3D_18_Weights, "r2plus1d_18": tvv.R2Plus1D_18_Weights, "mc3_18": tvv.MC3_18_Weights,
            "s3d": tvv.S3D_Weights, "mvit_v2_s": tvv.MViT_V2_S_Weights, "swin3d_t": tvv.Swin3D_T_Weights}[arch]
    keywords = enum.KINETICS400_V1.transforms.keywords
    assert spec.mean == tuple(keywords.get("mean", (0.43216, 0.394666, 0.37645)))
    assert spec.clip_seconds == frames / fps
