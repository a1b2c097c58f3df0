"""The tag flow against a real temporary Prefect server: what it skips and what it tags again,
how it names its runs, what it leaves for operators, and how fast it gives up on a bad config."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.errors import ModelError
from actionrec.lake.lake import Lake
from actionrec.lake.query import query
from actionrec.models.card import file_version


@pytest.fixture()
def archive(tmp_path):
    src = tmp_path / "archive"
    src.mkdir()
    for i in range(4):
        write_indexed(src / f"v{i}.mp4", 20 + i)
    return src


def _tag(**kwargs):
    from flows.tag import tag_flow

    return tag_flow(clips=1, **kwargs)


def test_two_models_with_one_version_string_do_not_share_a_skip_set(prefect_api, archive, tmp_path):
    """Bug: the skip set filtered on the version only, so a second model with the same version string
    (every torchvision model is KINETICS400_V1; here: byte-identical checkpoints under two names)
    skipped every video the first one had tagged."""
    alpha = write_tiny_checkpoint(tmp_path / "alpha" / "model.pt", ["a", "b"], name="alpha")
    (tmp_path / "beta").mkdir()
    shutil.copy(alpha, tmp_path / "beta" / "model.pt")
    (tmp_path / "beta" / "card.json").write_text((tmp_path / "alpha" / "card.json").read_text()
                                                 .replace('"name": "alpha"', '"name": "beta"'))
    assert file_version(alpha) == file_version(tmp_path / "beta" / "model.pt")
    lake = str(tmp_path / "lake")
    first = _tag(source=str(archive), lake=lake, model=str(tmp_path / "alpha"))
    second = _tag(source=str(archive), lake=lake, model=str(tmp_path / "beta"))
    again = _tag(source=str(archive), lake=lake, model=str(tmp_path / "beta"))
    assert (first["ok"], second["ok"], second["videos_skipped"]) == (4, 4, 0)
    assert (again["ok"], again["videos_skipped"]) == (0, 4)
    per_model = query(lake, "SELECT model_name, count(*) FROM latest_predictions GROUP BY 1 ORDER BY 1")[1]
    assert per_model == [("alpha", 4), ("beta", 4)]


def test_a_model_folder_relative_to_the_working_directory(prefect_api, archive, tmp_path):
    """Bug: ``tag --model ./dir`` failed (its own parser took it for a registry name)."""
    write_tiny_checkpoint(tmp_path / "models" / "mine" / "model.pt", ["a", "b"], name="mine")
    old = os.getcwd()
    os.chdir(tmp_path / "models")
    try:
        row = _tag(source=str(archive), lake=str(tmp_path / "lake"), model="./mine")
    finally:
        os.chdir(old)
    assert (row["model_name"], row["ok"]) == ("mine", 4)


def test_champion_by_default_by_name_and_by_version_then_changes_are_tagged_again(prefect_api, archive, tmp_path):
    lake_dir = str(tmp_path / "lake")
    lake = Lake(lake_dir)
    v1_file = write_tiny_checkpoint(tmp_path / "v1" / "model.pt", ["a", "b"], name="actionrec")
    v1 = lake.register_model("actionrec", v1_file, file_version(v1_file))
    lake.promote("actionrec", v1, reason="test")
    first = _tag(source=str(archive), lake=lake_dir)  # no model: the lake's champion
    assert (first["model_name"], first["model_version"], first["ok"]) == ("actionrec", v1, 4)
    for model in ("actionrec", f"actionrec@{v1}"):
        row = _tag(source=str(archive), lake=lake_dir, model=model)
        assert (row["model_version"], row["ok"], row["videos_skipped"]) == (v1, 0, 4), model

    time.sleep(0.01)
    write_indexed(archive / "v2.mp4", 33)  # the same name, new content: a new identity
    changed = _tag(source=str(archive), lake=lake_dir)
    assert (changed["ok"], changed["videos_skipped"]) == (1, 3)

    v2_file = write_tiny_checkpoint(tmp_path / "v2" / "model.pt", ["a", "b", "c"], name="actionrec")
    v2 = lake.register_model("actionrec", v2_file, file_version(v2_file))
    lake.promote("actionrec", v2, reason="test", expected=v1)
    retagged = _tag(source=str(archive), lake=lake_dir)
    assert (retagged["model_version"], retagged["ok"], retagged["videos_skipped"]) == (v2, 4, 0)
    latest = query(lake_dir, "SELECT model_version, count(*) FROM latest_predictions GROUP BY 1")[1]
    assert latest == [(v2, 4)]  # one row per video and model name: the newest version's
    v2_rows = query(lake_dir, "SELECT count(*) FROM predictions WHERE video_uri LIKE ? AND model_version = ?",
                    ["%/v2.mp4", v1])[1]
    assert v2_rows == [(2,)]  # v2.mp4 was tagged by v1 before and after its change


def test_runs_are_named_and_failures_are_a_table_artifact(prefect_api, media, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    src = tmp_path / "nightly-archive"
    src.mkdir()
    shutil.copy(media["mp4"], src / "good.mp4")
    shutil.copy(media["text"], src / "bad.mp4")
    model = write_tiny_checkpoint(tmp_path / "model.pt", ["a", "b"])
    from flows.tag import tag_flow

    state = tag_flow(source=str(src), lake=str(tmp_path / "lake"), model=str(model), clips=1, return_state=True)
    row = state.result()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        assert run.name == f"tag-{row['started_at']:%Y-%m-%d}-nightly-archive"
        tasks = {t.name for t in client.read_task_runs() if t.flow_run_id == run.id}
        assert "tag-shard-0" in tasks
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["tag-failures"])))
        mine = [a for a in artifacts if a.flow_run_id == run.id]
    assert len(mine) == 1 and "bad.mp4" in str(mine[0].data) and "not a video" in str(mine[0].data)


def test_a_lake_without_a_champion_fails_at_once(prefect_api, archive, tmp_path):
    """Bug: a ModelError was retried 3 times with 2 + 10 + 30 s waits before the run failed."""
    from flows.tag import tag_flow

    started = time.monotonic()
    with pytest.raises(ModelError, match="no champion"):
        tag_flow(source=str(archive), lake=str(tmp_path / "empty-lake"))
    assert time.monotonic() - started < 10
