"""Engines: the choice rule as a table, every architecture converted to OpenVINO and checked against
torch, the conversion cache (converted once, crash-safe, opened without torch), and export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from checkpoints import write_tiny_checkpoint
from tiny import tiny_input, tiny_kwargs

from actionrec.engines import cache
from actionrec.engines.choice import EngineChoice, choose_engine, cpu_has_bf16
from actionrec.engines.openvino_runner import OpenVINORunner
from actionrec.engines.runners import open_runner
from actionrec.engines.torch_runner import TorchRunner
from actionrec.errors import ConfigError
from actionrec.models import build_model, list_architectures
from actionrec.models.refs import pin_model

CLASSES = ["a", "b", "c"]
F32_TOLERANCE = 1e-4  # largest probability difference OpenVINO f32 may show against torch f32
BF16_TOLERANCE = 0.05  # the same for bf16 (8 bits of mantissa), where the CPU has it


@pytest.mark.parametrize(("engine", "precision", "device", "bf16", "expected"), [
    ("auto", "auto", "cpu", "0", ("openvino", "f32")),
    ("auto", "auto", "cpu", "1", ("openvino", "bf16")),
    ("auto", "f32", "cpu", "1", ("openvino", "f32")),
    ("torch", "auto", "cpu", "0", ("torch", "f32")),
    ("torch", "auto", "cpu", "1", ("torch", "bf16")),
    ("openvino", "bf16", "cpu", "1", ("openvino", "bf16")),
    ("auto", "auto", None, "0", ("openvino", "f32")),  # no GPU on this machine: the CPU rule
    ("openvino", "bf16", "cpu", "0", ConfigError),  # emulated bf16 is ~60x slower: refused
    ("torch", "bf16", "cpu", "0", ConfigError),
    ("openvino", "auto", "cuda", "0", ConfigError),  # no such device here (and OpenVINO is CPU-only)
    ("tensorrt", "auto", "cpu", "0", ConfigError),
    ("auto", "int4", "cpu", "0", ConfigError),
])
def test_the_engine_rule(monkeypatch, engine, precision, device, bf16, expected):
    monkeypatch.setenv("ACTIONREC_CPU_BF16", bf16)
    if expected is ConfigError:
        with pytest.raises(ConfigError):
            choose_engine(engine, precision, device)
    else:
        got = choose_engine(engine, precision, device)
        assert (got.engine, got.precision, got.device) == (*expected, "cpu")


def test_torch_compile_means_the_torch_engine():
    assert choose_engine("auto", "f32", "cpu", torch_compile=True).engine == "torch"
    with pytest.raises(ConfigError, match="torch engine"):
        choose_engine("openvino", "f32", "cpu", torch_compile=True)


def _tiny(arch: str):
    """``arch`` at the smallest input it takes, with a spec that says so."""
    torch.manual_seed(0)
    t, s = tiny_input(arch)
    model = build_model(arch, CLASSES, **tiny_kwargs(arch))
    model.spec = model.spec.replace(frames_per_clip=t, frame_stride=1, short_side=s, crop_size=s, crop_width=None)
    return model


def _clips(model, n: int = 3) -> np.ndarray:
    s = model.spec
    return np.random.default_rng(0).integers(0, 256, (n, s.frames_per_clip, s.crop_size, s.crop_size, 3),
                                             dtype=np.uint8)


def _confident(probs: np.ndarray, margin: float) -> np.ndarray:
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0] > margin


@pytest.mark.parametrize("arch", list_architectures())
def test_every_architecture_converts_and_agrees_with_torch(arch):
    model = _tiny(arch)
    clips = _clips(model, 1 if model.spec.crop_size > 32 else 3)  # MViT and S3D only take 224 pixels: one clip
    torch_runner = TorchRunner(model, EngineChoice("torch", "f32", "cpu"), batch_size=len(clips))
    expected = torch_runner.run(clips)
    f32 = open_runner(model, EngineChoice("openvino", "f32", "cpu"))
    assert isinstance(f32, OpenVINORunner)
    got = f32.run(clips)
    assert got.shape == expected.shape and np.isfinite(got).all()
    assert np.abs(got - expected).max() < F32_TOLERANCE
    assert (got.argmax(1) == expected.argmax(1)).all()
    # The embeddings' features (the head's pooled input): one [C] row per clip, the same on both engines.
    probs, features = f32.run_features(clips)
    torch_probs, torch_features = torch_runner.run_features(clips)
    assert np.allclose(probs, got, atol=1e-6) and np.allclose(torch_probs, expected, atol=1e-6)
    assert features.shape == torch_features.shape and features.shape[0] == len(clips) and features.shape[1] > 1
    cosine = (features * torch_features).sum(1) / np.linalg.norm(features, axis=1) / np.linalg.norm(torch_features, axis=1)
    assert cosine.min() > 0.999
    if len(clips) > 1:
        assert f32.run(clips[:1]).shape == (1, len(CLASSES))  # the batch is dynamic: a short batch is not padded
    default = choose_engine("auto", "auto", "cpu")
    if default.precision == "bf16":
        fast = open_runner(model, default).run(clips)
        assert np.abs(fast - expected).max() < BF16_TOLERANCE
        sure = _confident(expected, 2 * BF16_TOLERANCE)
        assert (fast.argmax(1) == expected.argmax(1))[sure].all()


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 or AMX)")
def test_torch_bf16_autocast_on_cpu_agrees():
    model = _tiny("tiny3d")
    clips = _clips(model)
    expected = TorchRunner(model, EngineChoice("torch", "f32", "cpu"), batch_size=3).run(clips)
    got = TorchRunner(model, EngineChoice("torch", "bf16", "cpu"), batch_size=3).run(clips)
    assert np.abs(got - expected).max() < BF16_TOLERANCE


@pytest.fixture()
def checkpoint(tmp_path):
    return write_tiny_checkpoint(tmp_path / "m" / "model.pt", CLASSES, name="engines-test")


def test_a_checkpoint_is_converted_once_and_then_opened_without_torch(checkpoint, media, tmp_path):
    pinned = pin_model(str(checkpoint))
    choice = EngineChoice("openvino", "f32", "cpu")
    runner = open_runner(pinned, choice)
    hit = cache.lookup("openvino", pinned.name, pinned.version, _variant())
    assert hit is not None and runner.path == hit[0] / "model.xml"
    meta = json.loads((hit[0] / cache.META).read_text())
    assert meta["version"] == pinned.version and meta["classes"] == CLASSES
    assert meta["input"]["shape"] == [-1, 4, 32, 32, 3] and meta["input"]["dtype"] == "uint8"
    mtime = (hit[0] / "model.bin").stat().st_mtime_ns
    # A fresh process: the pinned model opens from the cache, scores real videos, and never imports torch.
    code = textwrap.dedent(f"""
        import json, sys
        from actionrec.engines.choice import choose_engine
        from actionrec.engines.runners import open_runner
        from actionrec.inference.predictor import Predictor
        from actionrec.models.refs import pin_model
        if __name__ == "__main__":
            runner = open_runner(pin_model({str(checkpoint)!r}), choose_engine("openvino", "f32", "cpu"))
            results = Predictor(runner, batch_size=2).predict_all([{str(media["mp4"])!r}, {str(media["text"])!r}],
                                                                   clips=2)
            print(json.dumps({{"status": [r.status for r in results], "torch": "torch" in sys.modules,
                              "top1": results[0].top_k[0].label}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["status"] == ["ok", "failed"] and seen["torch"] is False
    from actionrec.inference.predictor import Predictor

    assert seen["top1"] == Predictor(runner).predict_all([str(media["mp4"])], clips=2)[0].top_k[0].label
    assert (hit[0] / "model.bin").stat().st_mtime_ns == mtime  # not converted again



def test_converting_sends_no_telemetry(checkpoint, tmp_path):
    """OpenVINO's converter reports usage to Google unless opted out (a client id under ~/intel marks
    a consenting install); a conversion here, for a user who never chose, creates none and leaves
    no child process behind."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL", "NNCF_CI")}
    env.update(HOME=str(home), ACTIONREC_CACHE_DIR=str(tmp_path / "cache"))
    code = textwrap.dedent(f"""
        import multiprocessing
        from actionrec.engines.choice import EngineChoice
        from actionrec.engines.runners import open_runner
        from actionrec.models.refs import pin_model
        if __name__ == "__main__":
            open_runner(pin_model({str(checkpoint)!r}), EngineChoice("openvino", "f32", "cpu"))
            print(len(multiprocessing.active_children()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0"
    assert list(tmp_path.glob("cache/openvino/*/*/*/model.xml")) or list(tmp_path.glob("cache/**/model.xml"))
    assert not (home / "intel" / "openvino_ga_cid").exists(), sorted(p.name for p in home.rglob("*"))

def _variant() -> str:
    from actionrec.engines.openvino_runner import openvino_variant

    return openvino_variant()


def test_a_crash_mid_write_leaves_no_cache_entry(checkpoint):
    """A process killed while writing an entry leaves a temporary folder that is never read; the next
    open converts again and succeeds."""
    pinned = pin_model(str(checkpoint))
    code = textwrap.dedent(f"""
        import os
        from actionrec.engines import cache
        from actionrec.engines.cache import ModelMeta
        from actionrec.models.refs import load_model
        meta = ModelMeta.of(load_model({str(checkpoint)!r}))
        with cache.publishing("openvino", meta, {_variant()!r}) as tmp:
            (tmp / "model.xml").write_text("<half")
            os._exit(9)  # killed mid-write
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ)
    assert out.returncode == 9, out.stderr
    folder = cache.entry_dir("openvino", pinned.name, pinned.version, _variant())
    assert not folder.exists() and list(folder.parent.glob(".partial-*"))
    assert cache.lookup("openvino", pinned.name, pinned.version, _variant()) is None
    runner = open_runner(pinned, EngineChoice("openvino", "f32", "cpu"))
    assert runner.run(np.zeros((1, 4, 32, 32, 3), np.uint8)).shape == (1, 3)
    assert cache.lookup("openvino", pinned.name, pinned.version, _variant()) is not None


def test_an_unsaved_model_is_converted_but_never_cached(tmp_path, monkeypatch):
    """Weights with no version (built or trained in memory) have no identity to cache by. (A cache
    of its own: the session's is shared with the other test worker, which converts models meanwhile.)"""
    monkeypatch.setenv("ACTIONREC_CACHE_DIR", str(tmp_path / "cache"))
    model = _tiny("tiny3d")
    before = sorted(cache.cache_root().rglob("*")) if cache.cache_root().exists() else []
    runner = open_runner(model, EngineChoice("openvino", "f32", "cpu"))
    assert runner.path is None
    with torch.no_grad():
        for p in model.module.parameters():
            p.mul_(-1)
    other = open_runner(model, EngineChoice("openvino", "f32", "cpu"))
    clips = _clips(model)
    assert not np.allclose(runner.run(clips), other.run(clips))
    after = sorted(cache.cache_root().rglob("*")) if cache.cache_root().exists() else []
    assert before == after


@pytest.mark.parametrize("fmt", ["openvino", "onnx"])
def test_export_writes_a_model_that_agrees_with_torch(checkpoint, tmp_path, fmt):
    out = subprocess.run([sys.executable, "-m", "actionrec.cli", "export", str(checkpoint), "--format", fmt,
                          "--out", str(tmp_path / fmt), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["top1_agree"] and done["max_prob_diff"] < F32_TOLERANCE
    assert (tmp_path / fmt / ("model.xml" if fmt == "openvino" else "model.onnx")).is_file()
    meta = json.loads((tmp_path / fmt / "meta.json").read_text())
    assert meta["classes"] == CLASSES and meta["format"] == fmt and meta["input"]["layout"] == "NTHWC"
    # What a deployment elsewhere would do: read the file with OpenVINO, feed uint8 clips of any batch.
    import openvino as ov

    compiled = ov.Core().compile_model(str(done["path"]), "CPU")
    assert np.asarray(compiled([np.zeros((3, 4, 32, 32, 3), np.uint8)])[0]).shape == (3, 3)


def test_export_refuses_an_unknown_format(checkpoint, tmp_path):
    out = subprocess.run([sys.executable, "-m", "actionrec.cli", "export", str(checkpoint), "--format", "tflite",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "invalid choice" in out.stderr
