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


def full(*args: str, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    """The installed console script's entry point: core, pipeline and serve commands."""
    return subprocess.run([sys.executable, "-m", "deployments.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def test_tag_without_a_champion_exits_2_at_once_with_one_line(media, tmp_path):
    """Bug: took 66 s (the task retried a configuration error 3 times) and printed two tracebacks."""
    import time

    started = time.monotonic()
    out = full("tag", str(media["mp4"].parent), "--lake", str(tmp_path / "empty-lake"))
    assert out.returncode == 2 and time.monotonic() - started < 15, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "no champion" in out.stderr and "Traceback" not in out.stderr
    missing = full("tag", str(tmp_path / "nowhere"), "--lake", str(tmp_path / "lake"), "--model", "x.pt")
    assert missing.returncode == 2 and "source not found" in missing.stderr
    labels = full("retrain", "--labels", str(tmp_path / "none.csv"), "--lake", str(tmp_path / "lake"))
    assert labels.returncode == 2 and "labels: file not found" in labels.stderr
    assert len(labels.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flag,value", [("--decode-timeout", "nan"), ("--decode-timeout", "inf"),
                                        ("--decode-timeout", "0"), ("--clips", "0"),
                                        ("--device", "gpu"), ("--shard-size", "-1")])
def test_bad_numbers_and_names_are_refused_where_they_are_parsed(media, checkpoint, tmp_path, flag, value, capsys):
    from deployments.cli import main

    rc = main(["tag", str(media["mp4"]), "--lake", str(tmp_path / "lake"), "--model", str(checkpoint), flag, value])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "lake").exists()


def test_exit_status_says_what_happened(media, tmp_path, capsys):
    """Bug: every error exited 2, the status for usage and configuration errors, even a corrupt file."""
    from actionrec.cli import main

    assert main(["inspect", str(media["text"])]) == 1 and "not a video" in capsys.readouterr().err
    assert main(["query", "select 1", "--lake", str(tmp_path / "typo")]) == 2
    assert "no lake at" in capsys.readouterr().err
    assert main(["predict", str(media["mp4"]), "--model", str(tmp_path / "none.pt")]) == 2


def test_evaluate_writes_files_only_where_asked(checkpoint, tmp_path):
    """Bug: without --out, evaluate wrote its report into the current folder."""
    from actionrec.data.synth import SynthConfig, write_dataset

    labels = write_dataset(tmp_path / "data", SynthConfig(per_class=1, size=32, num_frames=16))
    rows = ["video_uri,label,split"] + [f"{line.split(',')[0]},{['left', 'right', 'up'][i % 3]},test"
                                        for i, line in enumerate(labels.read_text().splitlines()[1:])]
    (tmp_path / "data" / "three.csv").write_text("\n".join(rows) + "\n")
    work = tmp_path / "cwd"
    work.mkdir()
    ev = run("evaluate", "--model", str(checkpoint), "--labels", str(tmp_path / "data" / "three.csv"), "--clips", "1",
             "--json", cwd=work)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["num_videos"] == 8 and list(work.iterdir()) == []


def test_every_option_says_its_default_and_version():
    from actionrec.cli import build_parser
    from deployments.cli import add_serve
    from flows.cli import add_commands

    parser = build_parser([add_commands, add_serve])
    missing = []

    def walk(p, path):
        for action in p._actions:  # argparse keeps no public list of a parser's options
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.option_strings and action.dest not in ("help", "version"):
                text = action.help or ""
                if "default" not in text and "required" not in text:
                    missing.append(f"{path} {action.option_strings[0]}")

    walk(parser, "actionrec")
    assert not missing, missing
    version = full("--version")
    assert version.returncode == 0 and version.stdout.startswith("actionrec ")


def test_models_registry_commands_on_a_local_lake(checkpoint, tmp_path):
    from actionrec.lake.lake import Lake
    from actionrec.models.card import file_version

    lake = Lake(tmp_path / "lake")
    second = write_tiny_checkpoint(tmp_path / "b" / "model.pt", ["left", "right", "up", "down"], "cli-test")
    v1 = lake.register_model("actionrec", checkpoint, file_version(checkpoint), {"arch": "tiny3d", "created_at": "1"})
    v2 = lake.register_model("actionrec", second, file_version(second), {"arch": "tiny3d", "created_at": "2"})
    lake.promote("actionrec", v1, reason="first", by="tester")
    where = ["--lake", str(tmp_path / "lake"), "--json"]
    listed = [json.loads(x) for x in run("models", "list", *where).stdout.splitlines()]
    assert [(r["version"], r["champion"]) for r in listed] == [(v1, True), (v2, False)]
    promoted = run("models", "promote", f"actionrec@{v2}", "--reason", "looks better", *where)
    assert promoted.returncode == 0 and json.loads(promoted.stdout)["previous"] == v1
    shown = json.loads(run("models", "show", "actionrec", *where).stdout)
    assert shown["version"] == v2 and [e["reason"] for e in shown["history"]] == ["first", "looks better"]
    back = run("models", "rollback", "actionrec", *where)
    assert back.returncode == 0 and json.loads(back.stdout)["version"] == v1
    assert lake.champion("actionrec") == v1
    assert run("models", "promote", "actionrec", *where).returncode == 2  # a version is required
    human = run("models", "show", f"actionrec@{v2}", "--lake", str(tmp_path / "lake"))
    assert "champion history" in human.stdout and "rollback" in human.stdout


def test_models_registry_commands_on_an_s3_lake(checkpoint, s3_endpoint, tmp_path, capsys):
    import boto3

    from actionrec.cli import main
    from actionrec.lake.lake import Lake
    from actionrec.models.card import file_version

    boto3.client("s3").create_bucket(Bucket="registry-cli")
    lake = Lake("s3://registry-cli/lake")
    other = write_tiny_checkpoint(tmp_path / "b" / "model.pt", ["left", "right"], "cli-test")
    v1 = lake.register_model("actionrec", checkpoint, file_version(checkpoint), {"created_at": "1"})
    v2 = lake.register_model("actionrec", other, file_version(other), {"created_at": "2"})
    where = ["--lake", "s3://registry-cli/lake", "--json"]
    assert main(["models", "promote", f"actionrec@{v1}", *where]) == 0
    assert main(["models", "promote", f"actionrec@{v2}", *where]) == 0
    assert main(["models", "rollback", "actionrec", *where]) == 0
    capsys.readouterr()
    assert main(["models", "show", "actionrec", *where]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == v1 and [e["version"] for e in shown["history"]] == [v1, v2, v1]
    when = shown["history"][0]["promoted_at"]
    assert "T" in when and when.endswith("+00:00")  # ISO 8601, UTC
    assert main(["models", "list", *where]) == 0
    assert [json.loads(x)["champion"] for x in capsys.readouterr().out.splitlines()] == [True, False]


def test_a_lake_that_is_a_file_or_missing_is_a_usage_error(checkpoint, media, tmp_path, capsys):
    from deployments.cli import main

    a_file = tmp_path / "lake.txt"
    a_file.write_text("not a folder")
    assert main(["tag", str(media["mp4"]), "--lake", str(a_file), "--model", str(checkpoint)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["models", "list", "--lake", str(tmp_path / "nowhere")]) == 2
    assert "no lake at" in capsys.readouterr().err
