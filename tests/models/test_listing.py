"""``actionrec models``: every architecture with its cost and cached weights; ``--measure`` times it
(tiny3d only here: measuring big models is slow)."""

from __future__ import annotations

import json

import pytest

from actionrec.cli import main
from actionrec.engines import profile
from actionrec.models import build_model, get_architecture
from actionrec.models.weights import weights_cache_path


def _rows(capsys) -> dict[str, dict]:
    return {r["arch"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}


def test_listing_costs_cached_weights_and_measurements(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACTIONREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights_cache_path(get_architecture("r3d_18").urls["KINETICS400_V1"]).parent.mkdir(parents=True)
    weights_cache_path(get_architecture("r3d_18").urls["KINETICS400_V1"]).write_bytes(b"")
    assert main(["models", "--arch", "tiny3d", "--arch", "tiny2d", "--arch", "r3d_18", "--json"]) == 0
    rows = _rows(capsys)
    tiny = rows["tiny3d"]
    assert {"arch", "order_aware", "weights", "input_spec", "description"} <= set(tiny)  # the fields it had
    net = build_model("tiny3d", [str(i) for i in range(profile.NUM_CLASSES)]).module
    assert tiny["params"] == sum(p.numel() for p in net.parameters()) and 0.1 < tiny["gflops_per_clip"] < 1
    assert tiny["seconds_per_clip"] == {e: None for e in profile.cpu_engines()} and tiny["weights_cached"] == {}
    assert rows["r3d_18"]["weights_cached"] == {"KINETICS400_V1": True}
    assert 70 < rows["r3d_18"]["gflops_per_clip"] < 90  # FlopCounterMode's count: 2x torchvision's 40.7 (MACs)

    assert main(["models", "--measure", "--arch", "tiny3d", "--json"]) == 0
    measured = _rows(capsys)["tiny3d"]["seconds_per_clip"]
    assert set(measured) == set(profile.cpu_engines()) and all(0 < s < 30 for s in measured.values())
    # Later listings read costs and timings from the cache: nothing is counted or run again.
    monkeypatch.setattr(profile, "_count", lambda arch: pytest.fail("counted again"))
    monkeypatch.setattr(profile, "measure", lambda *a, **k: pytest.fail("measured again"))
    assert main(["models", "--arch", "tiny3d", "--json"]) == 0
    assert _rows(capsys)["tiny3d"]["seconds_per_clip"] == measured
    assert main(["models", "--arch", "tiny3d", "--arch", "tiny2d"]) == 0
    table = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert f"{measured['torch']:.3g}" in table["tiny3d"] and " - " in table["tiny2d"]


def test_unknown_arch_is_a_usage_error(capsys):
    assert main(["models", "--arch", "nope"]) == 2
    assert "unknown architecture nope" in capsys.readouterr().err
