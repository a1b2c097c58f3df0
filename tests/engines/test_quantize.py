"""int8 quantization: accepted only with its measured agreement, refused (and nothing cached)
without it, and used by --precision int8 only once accepted."""

from __future__ import annotations

import pytest

from actionrec.data.labels import read_labels
from actionrec.data.synth import SynthConfig, write_dataset
from actionrec.engines import cache
from actionrec.engines.choice import EngineChoice, choose_engine
from actionrec.engines.openvino_runner import openvino_variant
from actionrec.engines.quantize import accept, check_min_agreement, quantize
from actionrec.engines.runners import open_runner
from actionrec.errors import ConfigError, ModelError
from actionrec.inference.predictor import Predictor
from actionrec.models.refs import pin_model

FOUR = ("growing", "moving left", "moving right", "shrinking")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    labels = write_dataset(tmp_path_factory.mktemp("fresh"), SynthConfig(per_class=4, seed=7, size=32, num_frames=16))
    return [r.uri for r in read_labels(labels).rows if r.label in FOUR]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny3d that has learned four synthetic classes (its top-1 varies with the video)."""
    import dataclasses

    from actionrec.training.config import TrainConfig
    from actionrec.training.loop import train

    out = tmp_path_factory.mktemp("trained")
    table = read_labels(write_dataset(out / "data", SynthConfig(per_class=12, seed=5, size=32, num_frames=16)))
    four = dataclasses.replace(table, rows=tuple(r for r in table.rows if r.label in FOUR), classes=FOUR)
    cfg = TrainConfig(arch="tiny3d", epochs=40, batch_size=8, seed=0, arch_kwargs={"width": 8},
                      spec_overrides={"frames_per_clip": 8, "frame_stride": 2, "short_side": 32, "crop_size": 32})
    train(cfg, four, out=out / "m" / "model.pt", progress=False)
    return out / "m" / "model.pt"


@pytest.mark.parametrize(("agreement", "checked", "minimum", "ok"), [
    (0.99, 100, 0.99, True),
    (1.0, 8, 1.0, True),
    (0.98, 100, 0.99, False),  # below the bar
    (1.0, 7, 0.5, False),  # too few held-out clips to say anything
])
def test_the_acceptance_rule(agreement, checked, minimum, ok):
    if ok:
        accept(agreement, checked, minimum)
    else:
        with pytest.raises(ModelError):
            accept(agreement, checked, minimum)


@pytest.mark.parametrize("bad", [0, -0.5, 1.01, float("nan"), "high", True])
def test_min_agreement_is_checked(bad):
    with pytest.raises(ConfigError):
        check_min_agreement(bad)


def test_a_trained_model_is_quantized_and_used_with_precision_int8(trained, fresh, media):
    pinned = pin_model(str(trained))
    with pytest.raises(ConfigError, match="actionrec quantize"):  # not made yet: never made behind one's back
        open_runner(pinned, choose_engine("auto", "int8", "cpu"))
    done = quantize(pinned, fresh, clips=2, min_agreement=0.9)
    assert done.checked_clips == done.calibration_clips == len(fresh)  # 2 clips x half the videos each
    assert 0.9 <= done.agreement <= 1.0 and done.max_prob_diff < 0.5
    hit = cache.lookup("openvino", pinned.name, pinned.version, openvino_variant("int8"))
    assert hit is not None and str(hit[0] / "model.xml") == done.path
    runner = open_runner(pinned, choose_engine("auto", "int8", "cpu"))
    results = Predictor(runner, batch_size=4).predict_all([str(media["mp4"]), str(media["text"])], clips=2)
    assert [r.status for r in results] == ["ok", "failed"] and runner.choice.precision == "int8"
    with pytest.raises(ConfigError, match="openvino"):
        choose_engine("torch", "int8", "cpu")


def test_a_quantization_that_disagrees_is_refused_and_nothing_is_cached(trained, tmp_path, fresh):
    """Calibrated on unrepresentative video (every calibration clip black), the int8 ranges are wrong
    for real input and top-1 no longer follows f32 on the held-out clips: refused, nothing cached,
    and --precision int8 still has nothing to use."""
    import shutil

    import numpy as np

    from actionrec.io.video import write_video

    (tmp_path / "refused").mkdir()
    shutil.copy(trained, tmp_path / "refused" / "model.pt")  # no card: its own name, its own cache entries
    pinned = pin_model(str(tmp_path / "refused"))
    black = write_video(tmp_path / "black.mp4", [np.zeros((32, 32, 3), np.uint8)] * 16, 16)
    videos = [v for uri in fresh for v in (str(black), uri)]  # even: calibration (black), odd: check (real)
    with pytest.raises(ModelError, match="refused"):
        quantize(pinned, videos, clips=2, min_agreement=0.99)
    assert cache.lookup("openvino", pinned.name, pinned.version, openvino_variant("int8")) is None
    with pytest.raises(ConfigError, match="actionrec quantize"):
        open_runner(pinned, EngineChoice("openvino", "int8", "cpu"))


def test_the_quantize_command(trained, fresh, tmp_path, capsys):
    import json
    import shutil

    from actionrec.cli import main

    assert main(["quantize", str(trained), "--videos", str(tmp_path), "--min-agreement", "1.5"]) == 2
    assert "min_agreement" in capsys.readouterr().err
    (tmp_path / "cli").mkdir()
    shutil.copy(trained, tmp_path / "cli" / "model.pt")
    folder = str(fresh[0]).rsplit("/", 2)[0]  # the fresh draw's videos/ folder
    assert main(["quantize", str(tmp_path / "cli"), "--videos", folder, "--max-videos", "16", "--min-agreement",
                 "0.9", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["agreement"] >= 0.9 and done["checked_clips"] == 16
    assert main(["predict", str(media_file := fresh[1]), "--model", str(tmp_path / "cli"), "--precision", "int8",
                 "--decode-backend", "thread", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["uri"] == media_file
