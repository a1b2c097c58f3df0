"""The command line as a user runs it: real subprocesses, exit codes, one JSON object per line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from checkpoints import write_tiny_checkpoint


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actionrec.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "model.pt", ["left", "right", "up"], "cli-test")


def test_predict_json_lines_and_exit_status(media, checkpoint):
    ok = run("predict", str(media["mp4"]), str(media["avi"]), "--model", str(checkpoint), "--json", "--top-k", "2")
    assert ok.returncode == 0, ok.stderr
    lines = [json.loads(x) for x in ok.stdout.splitlines()]
    assert [x["status"] for x in lines] == ["ok", "ok"]
    assert all(len(x["top_k"]) == 2 and x["model_name"] == "cli-test" for x in lines)
    bad = run("predict", str(media["mp4"]), str(media["empty"]), str(media["text"]), "--model", str(checkpoint),
              "--json")
    assert bad.returncode == 1
    rows = [json.loads(x) for x in bad.stdout.splitlines()]
    assert [r["status"] for r in rows] == ["ok", "failed", "failed"]
    assert "empty" in rows[1]["error"] and "not a video" in rows[2]["error"]


def test_usage_and_configuration_errors_exit_2(media, tmp_path):
    missing = run("predict", str(media["mp4"]), "--model", str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert run("predict").returncode == 2
    assert run("train", "--labels", str(tmp_path / "none.csv"), "--out", str(tmp_path / "m.pt"),
               "--epochs", "0").returncode == 2


def test_inspect_json_and_sheet(media, tmp_path):
    sheet = tmp_path / "sheet.png"
    out = run("inspect", str(media["mp4"]), "--json", "--clips", "2", "--sheet", str(sheet))
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["num_frames"] == 100 and info["width"] == 96 and info["codec"] == "h264"
    assert len(info["clips"]) == 2 and len(info["clips"][0]) == 16
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_synth_train_evaluate_round_trip(tmp_path):
    data = tmp_path / "data"
    assert run("synth", "--out", str(data), "--per-class", "3", "--size", "32", "--frames", "16", "--quiet").returncode == 0
    model = tmp_path / "model.pt"
    trained = run("train", "--labels", str(data / "labels.csv"), "--out", str(model), "--epochs", "1",
                  "--quiet", "--json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["model_version"]
    ev = run("evaluate", "--model", str(model), "--labels", str(data / "labels.csv"), "--clips", "2", "--split", "all",
             "--out", str(tmp_path / "ev"), "--json")
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(ev.stdout)
    assert metrics["num_videos"] == 24 and metrics["clips_per_video"] == 2
    # The printed metrics are the ones written beside the report, and top-5 contains top-1.
    written = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {k: written[k] for k in ("top1", "top5", "mean_class_accuracy")} == {
        k: metrics[k] for k in ("top1", "top5", "mean_class_accuracy")}
    assert metrics["top5"] >= metrics["top1"] and metrics["model_version"] == json.loads(trained.stdout)["model_version"]
    assert (tmp_path / "ev" / "confusion.png").exists() and "Top-1" in (tmp_path / "ev" / "report.md").read_text()


def test_models_lists_registry():
    out = run("models")
    assert out.returncode == 0 and "tiny3d" in out.stdout and "r2plus1d_18" in out.stdout
