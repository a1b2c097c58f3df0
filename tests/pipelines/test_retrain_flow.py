"""The retrain flow against a real temporary Prefect server: a champion that cannot be evaluated is
never replaced by accident, an incomparable one follows a stated policy, and a typo in the training
options is refused before any work."""

from __future__ import annotations

import json

import pytest

from actionrec.data.synth import SynthConfig, write_dataset
from actionrec.errors import CheckpointError
from actionrec.lake.lake import Lake

TINY = {"arch_kwargs": {"width": 4}, "spec_overrides": {"frames_per_clip": 8, "short_side": 32, "crop_size": 32, "crop_width": None},
        "epochs": 1}


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), SynthConfig(per_class=8, seed=3, size=32, num_frames=16,
                                                                      fps=16, val_fraction=0.3))


def _retrain(labels, lake, **kwargs):
    from flows.retrain import retrain_flow

    options = {**TINY, **kwargs.pop("train_options", {})}
    return retrain_flow(labels=str(labels), lake=str(lake), split="val", clips=1, train_options=options, **kwargs)


def test_an_unreadable_champion_fails_the_run_and_is_not_replaced(prefect_api, labels, tmp_path):
    """Bug: any error while evaluating the champion read as "no champion", and the candidate was
    promoted with the reason "no champion yet"."""
    first = _retrain(labels, tmp_path / "lake")
    assert first["promoted"] and first["reason"] == "no champion yet"
    champion = first["candidate_version"]
    (tmp_path / "lake" / "models" / "actionrec" / champion / "model.pt").write_bytes(b"damaged on disk")
    with pytest.raises(CheckpointError):
        _retrain(labels, tmp_path / "lake", train_options={"seed": 7})
    lake = Lake(tmp_path / "lake")
    assert lake.champion("actionrec") == champion
    assert [e.version for e in lake.history("actionrec")] == [champion]


def test_a_champion_of_other_classes_follows_the_stated_policy(prefect_api, labels, tmp_path):
    six = labels.parent / "six_classes.csv"  # beside labels.csv, so the relative video paths still hold
    six.write_text("".join(line for line in labels.read_text().splitlines(keepends=True)
                           if ",appearing," not in line and ",disappearing," not in line))
    old = _retrain(six, tmp_path / "lake")
    assert old["promoted"]
    kept = _retrain(labels, tmp_path / "lake")
    assert not kept["promoted"] and not kept["champion_comparable"]
    assert "cannot be compared" in kept["reason"] and "appearing" in kept["reason"] and "keep" in kept["reason"]
    assert Lake(tmp_path / "lake").champion("actionrec") == old["candidate_version"]
    taken = _retrain(labels, tmp_path / "lake", when_incomparable="promote", train_options={"seed": 5})
    assert taken["promoted"] and "when_incomparable=promote" in taken["reason"]
    history = Lake(tmp_path / "lake").history("actionrec")
    assert [e.version for e in history] == [old["candidate_version"], taken["candidate_version"]]
    assert history[-1].by.startswith("retrain flow run retrain-")


def test_a_typo_in_training_options_is_refused_before_any_work(prefect_api, labels, tmp_path):
    from flows.retrain import retrain_flow

    with pytest.raises(Exception, match="epoch"):
        retrain_flow(labels=str(labels), lake=str(tmp_path / "lake"), train_options={"epoch": 3})
    assert not (tmp_path / "lake").exists()  # nothing trained, nothing registered


def test_the_run_leaves_training_progress_and_a_link_to_its_report(prefect_api, labels, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        LogFilter,
        LogFilterFlowRunId,
    )

    from flows.retrain import retrain_flow

    state = retrain_flow(labels=str(labels), lake=str(tmp_path / "lake"), split="val", clips=1,
                         train_options={**TINY, "epochs": 2}, return_state=True)
    summary = state.result()
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]
        links = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["evaluation-report"])))
    assert any(m.startswith("epoch 1/2:") for m in logs) and any(m.startswith("epoch 2/2:") for m in logs)
    mine = [a for a in links if a.flow_run_id == run_id]
    assert len(mine) == 1 and summary["candidate_version"] in str(mine[0].data)
    assert (tmp_path / "lake" / "evaluations" / "actionrec" / summary["candidate_version"] / "report.md").exists()
    assert json.loads((tmp_path / "lake" / "models" / "actionrec" / "champion.json").read_text())["version"] == \
        summary["candidate_version"]


def test_degenerate_label_tables_are_refused_before_training(labels, tmp_path, capsys):
    """Reported: a one-class table trained and promoted a model with top-1 1.0; an empty test split
    was found only after training, and the candidate was registered all the same."""
    from deployments.cli import main

    lines = labels.read_text().splitlines()
    one = labels.parent / "one_class.csv"
    one.write_text("\n".join([lines[0], *[x for x in lines[1:] if ",growing," in x]]) + "\n")
    no_test = labels.parent / "no_test.csv"  # synth writes train and val only
    no_test.write_text(labels.read_text())
    lake = tmp_path / "lake"
    for table, words in ((one, "a classifier needs at least two"), (no_test, "the test split has 0 videos")):
        split = "val" if table is one else "test"
        assert main(["retrain", "--labels", str(table), "--lake", str(lake), "--split", split]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not lake.exists()  # nothing trained, nothing registered


def test_no_promotion_on_an_evaluation_of_too_few_videos():
    from actionrec.pipelines.retraining import ChampionCheck, EvalSummary, decide
    from actionrec.pipelines.settings import RetrainSettings

    small = EvalSummary("c1", 1.0, 1.0, 1.0, 0.0, num_videos=3)
    promoted, reason = decide(small, ChampionCheck(None), RetrainSettings())
    assert not promoted and "fewer than min_eval_videos=10" in reason
    assert decide(small, ChampionCheck(None), RetrainSettings(min_eval_videos=3))[0]
