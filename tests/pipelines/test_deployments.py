"""One definition of each deployment: ``serve`` registers it, ``prefect.yaml`` declares it, the
flows and the command line take their defaults from the same settings."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from actionrec.pipelines.settings import RetrainSettings, TagSettings, defaults_of
from deployments.definitions import prefect_yaml

YAML = Path(__file__).resolve().parents[2] / "deployments" / "prefect.yaml"
ENV = {"ACTIONREC_SOURCE": "s3://archive/videos", "ACTIONREC_LAKE": "s3://archive/lake",
       "ACTIONREC_LABELS": "s3://archive/labels.csv"}


def _expected_parameters(declared: dict) -> dict:
    """prefect.yaml's parameters with its {{ $VAR }} templates filled as serve fills them."""
    out = {}
    for key, value in declared.items():
        if isinstance(value, str) and value.startswith("{{ $"):
            value = ENV[value.removeprefix("{{ $").removesuffix(" }}")]
        out[key] = value
    return out


def test_prefect_yaml_is_the_generated_one():
    assert YAML.read_text() == prefect_yaml(), "regenerate: python -m deployments.definitions > deployments/prefect.yaml"


def test_serve_registers_what_prefect_yaml_declares_field_by_field():
    """Bug: prefect.yaml and serve ran different jobs under the same names (clips 3 vs 1, init
    champion vs scratch) with copied cron strings."""
    from deployments.serve import deployments

    declared = {d["name"]: d for d in yaml.safe_load(YAML.read_text())["deployments"]}
    served = {d.name: d for d in deployments(ENV["ACTIONREC_SOURCE"], ENV["ACTIONREC_LAKE"], ENV["ACTIONREC_LABELS"])}
    assert set(declared) == set(served) == {"nightly-tag", "weekly-retrain", "retrain-on-labels"}
    for name, d in declared.items():
        s = served[name]
        (schedule,) = s.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == (d["schedules"][0]["cron"],
                                                                        d["schedules"][0]["timezone"]), name
        assert s.parameters == _expected_parameters(d["parameters"]), name
        assert (s.description, list(s.tags), s.concurrency_limit) == (d["description"], d["tags"],
                                                                      d["concurrency_limit"]), name
        assert s.entrypoint.endswith(d["entrypoint"].replace("/", os.sep)) or s.entrypoint.endswith(
            d["entrypoint"].split(":")[-1]), (s.entrypoint, d["entrypoint"])
        assert s.concurrency_limit == 1  # a night's run never overlaps the next one
    assert [d.name for d in deployments("src", "lake", None)] == ["nightly-tag", "retrain-on-labels"]


def test_flows_and_cli_take_their_defaults_from_the_settings():
    from actionrec.cli import build_parser, options_from
    from deployments.cli import add_serve
    from flows.cli import add_commands
    from flows.retrain import retrain_flow
    from flows.tag import tag_flow

    for flow, cls in ((tag_flow, TagSettings), (retrain_flow, RetrainSettings)):
        params = inspect.signature(flow.fn).parameters
        for name, default in defaults_of(cls).items():
            assert params[name].default == default, (flow.name, name)
    parser = build_parser([add_commands, add_serve])
    assert options_from(parser.parse_args(["tag", "src"]), TagSettings) == {}  # unset flags: the defaults apply
    args = parser.parse_args(["tag", "src", "--clips", "2", "--decode-timeout", "60"])
    assert TagSettings(**options_from(args, TagSettings)) == TagSettings(clips=2, decode_timeout_s=60.0)
    args = parser.parse_args(["retrain", "--labels", "l.csv", "--name", "other", "--split", "val"])
    assert options_from(args, RetrainSettings) == {"model_name": "other", "split": "val"}


def test_serve_registers_the_schedules_on_the_server(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client

    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("ACTIONREC_LABELS", None)
    bare = subprocess.Popen([sys.executable, "-m", "deployments.cli", "serve", "--source", str(tmp_path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first_line = bare.stderr.readline()  # printed before serving starts
    finally:
        bare.kill()
        bare.wait(timeout=30)
    assert "no --labels" in first_line and "no retrain deployment" in first_line

    proc = subprocess.Popen([sys.executable, "-m", "deployments.cli", "serve", "--source", str(tmp_path / "videos"),
                             "--lake", str(tmp_path / "lake"), "--labels", str(tmp_path / "labels.csv")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, found = time.time() + 120, None
        while time.time() < deadline and found is None:
            time.sleep(1)
            with get_client(sync_client=True) as client:
                try:
                    tag = client.read_deployment_by_name("tag/nightly-tag")
                    retrain = client.read_deployment_by_name("retrain/weekly-retrain")
                    found = (tag, retrain)
                except Exception:  # not registered yet
                    found = None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert found is not None, "serve registered nothing in 120 s"
    tag, retrain = found
    assert [(s.schedule.cron, s.schedule.timezone) for s in tag.schedules] == [("0 2 * * *", "UTC")]
    assert tag.parameters == {"source": str(tmp_path / "videos"), "lake": str(tmp_path / "lake"), "model": None}
    limit = tag.global_concurrency_limit.limit if tag.global_concurrency_limit else tag.concurrency_limit
    assert limit == 1 and "tagging" in tag.tags
    assert [(s.schedule.cron, s.schedule.timezone) for s in retrain.schedules] == [("0 4 * * 0", "UTC")]
    assert retrain.parameters == {"labels": str(tmp_path / "labels.csv"), "lake": str(tmp_path / "lake")}
