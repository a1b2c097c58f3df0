"""Names from the archive or the user never escape the lake, and never become SQL or paths."""

from __future__ import annotations

import pytest

from actionrec.errors import ConfigError, ModelError, StorageError
from actionrec.io.storage import Store
from actionrec.lake.lake import Lake
from actionrec.names import check_name


@pytest.mark.parametrize("rel", ["../x.parquet", "a/../../x", "/etc/passwd", "a/./b"])
def test_keys_cannot_leave_the_store(tmp_path, rel):
    store = Store(tmp_path / "lake")
    with pytest.raises(StorageError, match="leaves the store"):
        store.write_bytes(rel, b"x")
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "x" * 200, "bad name", "..", "naïve"])
def test_ids_that_become_path_parts_are_checked(name):
    with pytest.raises(ConfigError):
        check_name("model name", name)


def test_lake_refuses_bad_model_names_and_versions(tmp_path):
    from actionrec.models.refs import load_model

    lake = Lake(tmp_path / "lake")
    with pytest.raises(ConfigError):
        lake.champion("../../etc")
    with pytest.raises(ConfigError):
        lake.has_model("actionrec", "../../x")
    with pytest.raises(ConfigError):
        load_model("actionrec@..", lake=tmp_path / "lake")
    with pytest.raises(ModelError, match="no champion"):
        load_model("actionrec", lake=tmp_path / "lake")


def test_odd_local_file_names_round_trip_as_uris(tmp_path):
    from actionrec.io.storage import list_videos
    from actionrec.io.uris import local_path, normalize_uri

    odd = tmp_path / "sub dir" / "ünï cödé #1.mp4"
    odd.parent.mkdir()
    odd.write_bytes(b"x")
    (listed,) = list_videos(tmp_path)
    assert listed.uri.startswith("file://") and " " not in listed.uri
    assert local_path(listed.uri) == odd.resolve() and normalize_uri(odd) == listed.uri


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-checkpoint",))


def test_tagging_with_a_malicious_checkpoint_is_refused_and_runs_nothing(media, tmp_path):
    import shutil
    import subprocess
    import sys

    import torch

    evil = tmp_path / "model.pt"
    torch.save({"format": "actionrec-checkpoint", "state_dict": _Payload()}, evil)
    (tmp_path / "videos").mkdir()
    shutil.copy(media["mp4"], tmp_path / "videos" / "clip.mp4")
    out = subprocess.run([sys.executable, "-m", "deployments.cli", "tag", str(tmp_path / "videos"), "--lake",
                          str(tmp_path / "lake"), "--model", str(evil)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 2 and "pickled" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    assert not (tmp_path / "lake").exists()  # refused before any run started
