"""Checkpoints edited by someone hostile (or damaged) are refused with one clear line before they
cost anything: no allocation driven by unchecked metadata, no traceback, no NaN scores in the lake."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from checkpoints import write_tiny_checkpoint

from actionrec.errors import CheckpointError, ConfigError, ModelError
from actionrec.models.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("good") / "model.pt", ["a", "b"])


def edited(good: Path, out: Path, edit) -> Path:
    payload = torch.load(good, weights_only=True)
    edit(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    return out


EDITS = {
    "a huge width": (lambda p: p["arch_kwargs"].update(width=200_000), "parameter network"),
    "frames per clip": (lambda p: p["input_spec"].update(frames_per_clip=100_000), "input_spec.frames_per_clip"),
    "a huge clip": (lambda p: p["input_spec"].update(frames_per_clip=1000, crop_size=2000, short_side=2000),
                    "larger than any model reads"),
    "a huge wide clip": (lambda p: p["input_spec"].update(frames_per_clip=1000, crop_size=200, short_side=200, crop_width=4000),
                         "larger than any model reads"),
    "a wider crop than any frame": (lambda p: p["input_spec"].update(crop_width=10**6), "input_spec.crop_width"),
    "a string crop width": (lambda p: p["input_spec"].update(crop_width="wide"), "crop_width"),
    "a string version": (lambda p: p.update(format_version="1"), "format_version"),
    "an unknown key": (lambda p: p.update(payload_extra={"x": 1}), "unknown fields"),
    "a list for a dict": (lambda p: p.update(arch_kwargs=[1, 2]), "arch_kwargs"),
    "an unknown argument": (lambda p: p["arch_kwargs"].update(depth=3), "arch_kwargs"),
    "duplicate classes": (lambda p: p.update(classes=["a", "a"]), "appear twice"),
    "an empty class": (lambda p: p.update(classes=["a", ""]), "class name"),
    "no classes": (lambda p: p.update(classes=[]), "classes must be"),
    "a non-finite fps": (lambda p: p["input_spec"].update(sample_fps=float("nan")), "sample_fps"),
    "an extra tensor": (lambda p: p["state_dict"].update(extra=torch.zeros(3)), "unexpected: extra"),
    "a grown tensor": (lambda p: p["state_dict"].update({"head.1.weight": torch.zeros(2, 999)}), "head.1.weight"),
    "a missing tensor": (lambda p: p["state_dict"].pop("head.1.bias"), "missing: head.1.bias"),
    "an unknown architecture": (lambda p: p.update(arch="resnet9000"), "unknown architecture"),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_edited_metadata_is_refused_before_anything_is_built(good, tmp_path, what):
    edit, words = EDITS[what]
    path = edited(good, tmp_path / "model.pt", edit)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path)


def test_a_huge_network_is_refused_without_the_memory_it_asks_for(good, tmp_path):
    """Reported: an edited width grew the process past 14 GB until the kernel killed it."""
    path = edited(good, tmp_path / "model.pt", lambda p: p["arch_kwargs"].update(width=200_000))
    code = textwrap.dedent(f"""
        from actionrec.errors import CheckpointError
        from actionrec.models.checkpoint import load_checkpoint
        try:
            load_checkpoint({str(path)!r})
        except CheckpointError as e:
            # VmHWM: this program's peak resident memory (getrusage would count the forking parent too)
            peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
            print("refused", int(peak.split()[1]) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    verdict, peak_mb = out.stdout.split()
    assert verdict == "refused" and int(peak_mb) < 1500, out.stdout + out.stderr


def test_a_compressed_checkpoint_is_refused_before_it_is_read(good, tmp_path):
    """Reported: a small compressed file with an extra large tensor reached 1.6 GB before refusal."""
    packed = tmp_path / "model.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(CheckpointError, match="compressed"):
        load_checkpoint(packed)


def _nan_checkpoint(good: Path, path: Path) -> Path:
    def poison(p):
        for key, value in p["state_dict"].items():
            if value.is_floating_point():
                p["state_dict"][key] = torch.full_like(value, float("nan"))

    return edited(good, path, poison)


def test_nan_weights_fail_fast_instead_of_nan_rows(good, media, tmp_path, capsys):
    from actionrec.inference.predictor import Predictor
    from deployments.cli import main

    path = _nan_checkpoint(good, tmp_path / "nan" / "model.pt")
    with pytest.raises(ModelError, match="non-finite"):
        list(Predictor(load_checkpoint(path)).predict([str(media["mp4"]), str(media["avi"])]))
    src = tmp_path / "videos"
    src.mkdir()
    shutil.copy(media["mp4"], src / "a.mp4")
    assert main(["tag", str(src), "--lake", str(tmp_path / "lake"), "--model", str(path)]) == 2
    assert "non-finite" in capsys.readouterr().err and not (tmp_path / "lake").exists()


def test_a_video_the_model_scores_as_nan_is_a_failed_row(media, tmp_path):
    """A model that is finite on most input but not on one video: that video fails with the reason."""
    from torch import nn

    from actionrec.inference.predictor import NON_FINITE, Predictor
    from actionrec.models.checkpoint import build_model

    class NanOnBright(nn.Module):
        def forward(self, clip_ncthw):
            bright = clip_ncthw.mean(dim=(1, 2, 3, 4), keepdim=False) > 0.5
            logits = torch.zeros(len(clip_ncthw), 2)
            logits[bright] = float("nan")
            return logits

    model = build_model("tiny3d", ["a", "b"], width=4)
    model.module = NanOnBright()
    model.spec = model.spec.replace(frames_per_clip=2, short_side=32, crop_size=32, mean=(0, 0, 0), std=(1, 1, 1))
    dark = tmp_path / "dark.mp4"
    from actionrec.io.video import write_video

    write_video(dark, [torch.zeros(32, 32, 3, dtype=torch.uint8).numpy()] * 10, 10)
    bright = tmp_path / "bright.mp4"
    write_video(bright, [torch.full((32, 32, 3), 250, dtype=torch.uint8).numpy()] * 10, 10)
    # engine torch: this stand-in network branches on its input, which a traced (OpenVINO) graph cannot
    # one decode worker: the dark video is scored first (a first clip that is NaN means "broken model")
    results = {r.uri: r for r in Predictor(model, batch_size=1, decode_backend="thread", decode_workers=1,
                                           engine="torch").predict(
        [str(dark), str(bright)], clips=1)}
    assert results[str(dark)].status == "ok"
    assert (results[str(bright)].status, results[str(bright)].error) == ("failed", NON_FINITE)


def test_a_device_this_machine_lacks_is_a_usage_error(good, media, capsys):
    from actionrec.cli import main

    for device in ("cuda:7", "gpu"):
        assert main(["predict", str(media["mp4"]), "--model", str(good), "--device", device]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "device" in err
    with pytest.raises(ConfigError, match="CUDA"):
        from actionrec.engines.choice import check_device

        check_device("cuda:7")
