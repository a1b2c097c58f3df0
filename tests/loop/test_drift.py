"""Drift watch: the divergence itself, which earlier runs a run is compared with and what its reason
says, and real tag flow runs over an archive whose class mix shifts (flagged) or stays (not)."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from actionrec.lake.lake import Lake
from actionrec.lake.query import query
from actionrec.lake.schema import CLIP_PREDICTIONS, PREDICTIONS
from actionrec.loop.drift import NO_EARLIER_RUNS, confidence_bin, drift_for_run, jensen_shannon
from actionrec.pipelines import tagging
from actionrec.pipelines.settings import TagSettings

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


# -- the divergence --------------------------------------------------------------------------------
def test_identical_histograms_diverge_by_nothing_and_disjoint_ones_by_one_bit():
    assert jensen_shannon([3, 1, 0, 7], [3, 1, 0, 7]) == 0.0
    assert jensen_shannon([3, 1, 0, 7], [30, 10, 0, 70]) == 0.0  # counts or shares: the same mix
    assert jensen_shannon([5, 0, 0], [0, 2, 9]) == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("p,q,expected", [
    ([1, 0], [1, 1], 1.5 - 0.75 * math.log2(3)),  # M = (3/4, 1/4)
    ([1, 1], [1, 1], 0.0),
    ([1, 0, 0, 0], [0, 1, 1, 1], 1.0),
    ([1, 1, 0, 0], [0, 0, 1, 1], 1.0),
    ([1, 1, 0], [0, 1, 1], 0.5),  # half the mass shared: M = (1/4, 1/2, 1/4)
    ([2, 1, 1], [1, 1, 2], None),
])
def test_divergence_table(p, q, expected):
    got = jensen_shannon(p, q)
    assert got == pytest.approx(jensen_shannon(q, p), abs=1e-12)  # symmetric
    assert 0.0 <= got <= 1.0
    if expected is None:  # against the textbook formula, written out here
        a, b = np.array(p) / sum(p), np.array(q) / sum(q)
        m = (a + b) / 2
        expected = 0.5 * np.sum(a * np.log2(a / m)) + 0.5 * np.sum(b * np.log2(b / m))
    assert got == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("p,q", [([1, 2], [1, 2, 3]), ([], []), ([0, 0], [1, 1]), ([1, -1], [1, 1]),
                                 ([1, math.nan], [1, 1]), ([1, math.inf], [1, 1])])
def test_histograms_that_cannot_be_compared_are_refused(p, q):
    with pytest.raises(ValueError):
        jensen_shannon(p, q)


def test_confidence_bins_cover_zero_to_one():
    assert [confidence_bin(s) for s in (0.0, 0.05, 0.1, 0.45, 0.999, 1.0, 1.0000001)] == [0, 0, 1, 4, 9, 9, 9]


# -- which runs, and what the reason says (runs written straight into a lake) ---------------------
def _run(lake: Lake, run_id: str, hours: float, labels: list[str], *, model: str = "m", version: str = "v1",
         status: str = "complete", flow: str = "tag", score: float = 0.8, failed: int = 0) -> str:
    started = T0 + dt.timedelta(hours=hours)
    rows = [{"run_id": run_id, "video_uri": f"file:///{run_id}/{i}.mp4", "video_etag": "e", "video_bytes": 1,
             "model_name": model, "model_version": version, "status": "ok", "top1_label": label,
             "top1_score": score, "processed_at": started} for i, label in enumerate(labels)]
    rows += [{"run_id": run_id, "video_uri": f"file:///{run_id}/bad{i}.mp4", "video_etag": "e", "video_bytes": 1,
              "model_name": model, "model_version": version, "status": "failed", "processed_at": started}
             for i in range(failed)]
    if rows:
        lake.write_shard(run_id, started.date(), 0, pa.Table.from_pylist(rows, PREDICTIONS),
                         CLIP_PREDICTIONS.empty_table())
    lake.write_run({"run_id": run_id, "flow": flow, "model_name": model, "model_version": version,
                    "started_at": started, "status": status, "ok": len(labels), "partial": 0, "failed": failed},
                   started.date())
    return run_id


def _mix(**counts: int) -> list[str]:
    return [label for label, n in counts.items() for _ in range(n)]


def test_the_first_run_has_nothing_to_compare_with(tmp_path):
    lake = Lake(tmp_path / "lake")
    _run(lake, "first", 0, _mix(a=50, b=50))
    _run(lake, "other-model", -1, _mix(a=50, b=50), model="other")
    d = drift_for_run(lake.root, "first", "m")
    assert (d.labels, d.confidence, d.flag, d.reason, d.videos) == (None, None, False, NO_EARLIER_RUNS, 100)
    assert d.columns() == {"drift_measure": "jensen-shannon", "drift_labels": None, "drift_confidence": None,
                           "drift_flag": False, "drift_reason": NO_EARLIER_RUNS}


def test_a_run_that_tagged_nothing_or_a_window_whose_predictions_are_gone_compares_nothing(tmp_path):
    lake = Lake(tmp_path / "lake")
    _run(lake, "r1", 0, _mix(a=50))
    _run(lake, "empty-night", 1, [], failed=2)
    d = drift_for_run(lake.root, "empty-night", "m")
    assert (d.labels, d.flag, d.reason) == (None, False, "this run tagged no videos: nothing to compare")
    _run(lake, "r2", 2, _mix(a=50))
    for f in (tmp_path / "lake" / "predictions").rglob("r1-*.parquet"):
        f.unlink()
    d = drift_for_run(lake.root, "r2", "m", window=1)
    assert (d.labels, d.flag) == (None, False)
    assert d.reason == "the predictions of the earlier run are gone from the lake: nothing to compare with"


def test_the_window_is_the_latest_earlier_complete_runs_of_the_same_model_that_tagged_something(tmp_path):
    lake = Lake(tmp_path / "lake")
    _run(lake, "too-old", 0, _mix(b=100))  # outside a window of 3
    for i in (1, 2, 3):
        _run(lake, f"week-{i}", i, _mix(a=60, b=40))
    _run(lake, "incomplete", 3.5, _mix(b=100), status="incomplete")
    _run(lake, "other-model", 3.6, _mix(b=100), model="other")
    _run(lake, "retrain", 3.7, _mix(b=100), flow="retrain")
    _run(lake, "nothing-tagged", 3.8, [], failed=5)
    _run(lake, "now", 4, _mix(a=60, b=40), failed=3)
    _run(lake, "later", 5, _mix(b=100))  # started after: not earlier
    d = drift_for_run(lake.root, "now", "m", window=3, min_videos=50)
    assert d.window_runs == ("week-3", "week-2", "week-1")
    assert (d.videos, d.window_videos) == (100, 300)  # failed rows have no label: not counted
    assert (d.labels, d.confidence, d.flag) == (0.0, 0.0, False)
    assert d.reason.startswith("no shift: labels 0.000 bits, confidence 0.000 bits, within 0.1 bits, against "
                               "the last 3 runs of m (300 videos)")
    # the same run, taken from the lake afterwards: "earlier" is read from its own runs row
    assert drift_for_run(lake.root, "now", "m", window=3, min_videos=50).window_runs == d.window_runs


def test_a_shifted_mix_is_flagged_and_the_labels_that_moved_come_first(tmp_path):
    lake = Lake(tmp_path / "lake")
    _run(lake, "r1", 0, _mix(a=50, b=30, c=20), score=0.95)
    _run(lake, "r2", 1, _mix(a=50, b=30, c=20), score=0.95)
    _run(lake, "r3", 2, _mix(a=10, b=30, c=20, new=40), score=0.35)
    d = drift_for_run(lake.root, "r3", "m", min_videos=100)
    assert d.flag and d.labels > 0.1 and d.confidence == pytest.approx(1.0, abs=1e-7)
    assert d.reason.startswith("shift: the label mix and the confidences moved past 0.1 bits")
    assert [(s.label, round(s.run, 2), round(s.window, 2)) for s in d.shares[:2]] == [("a", 0.1, 0.5),
                                                                                      ("new", 0.4, 0.0)]
    md = d.markdown()
    assert "| a | 10.0% | 50.0% | -40.0 pts |" in md and "| new | 40.0% | 0.0% | +40.0 pts |" in md
    assert "| 0.3-0.4 | 100.0% | 0.0% |" in md


def test_too_few_videos_are_compared_but_not_flagged(tmp_path):
    lake = Lake(tmp_path / "lake")
    _run(lake, "r1", 0, _mix(a=100))
    _run(lake, "small", 1, _mix(b=10))
    d = drift_for_run(lake.root, "small", "m", min_videos=20)
    assert d.labels == pytest.approx(1.0, abs=1e-7) and not d.flag
    assert d.reason.startswith("not flagged: this run tagged 10 videos, fewer than 20 (too few to tell a shift "
                               "from chance); labels 1.000 bits")
    _run(lake, "big", 2, _mix(b=100))
    d = drift_for_run(lake.root, "big", "m", window=1, min_videos=20)  # its window: the small run alone
    assert not d.flag and d.reason.startswith("not flagged: the earlier runs hold 10 videos, fewer than 20")
    assert d.reason.endswith("against the last run of m (10 videos)")


def test_a_new_model_version_is_named_in_the_reason_and_the_run_still_flagged(tmp_path):
    lake = Lake(tmp_path / "lake")
    _run(lake, "r1", 0, _mix(a=100), version="old")
    _run(lake, "r2", 1, _mix(a=100), version="new")
    _run(lake, "r3", 2, _mix(b=100), version="new")
    d = drift_for_run(lake.root, "r3", "m", min_videos=50)
    assert d.flag and d.window_versions == ("old",)
    assert d.reason.endswith("; 1 of the earlier 2 runs used another model version (old) than this run (new): "
                             "a new champion changes the mix by itself")
    assert "another model version" not in drift_for_run(lake.root, "r3", "m", window=1).reason


def test_a_lake_that_cannot_be_read_leaves_the_drift_not_computed_but_a_bug_is_raised(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "lake")
    _run(lake, "r1", 0, _mix(a=10))

    def unreadable(self, *args, **kwargs):
        raise OSError("When reading information for key 'runs/': AWS Error NETWORK_CONNECTION")

    monkeypatch.setattr(Lake, "table", unreadable)
    d = tagging.check_drift(lake.root, "r1", "m", T0, TagSettings())
    assert (d.labels, d.flag) == (None, False) and d.error and "NETWORK_CONNECTION" in d.reason
    assert d.reason.startswith("drift not computed: OSError")

    def buggy(self, *args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(Lake, "table", buggy)
    with pytest.raises(TypeError):
        tagging.check_drift(lake.root, "r1", "m", T0, TagSettings())


def test_drift_settings_are_checked():
    from actionrec.errors import ConfigError

    for bad in ({"drift_window": 0}, {"drift_min_videos": 0}, {"drift_threshold": 0}, {"drift_threshold": 1.5},
                {"drift_threshold": math.nan}, {"drift_threshold": True}):
        with pytest.raises(ConfigError, match="drift_"):
            TagSettings(**bad)


# -- real tag runs: an archive whose class mix shifts ---------------------------------------------
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
# Logit margins of the colour model: top-1 confidences about 0.96, 0.69 and 0.45 (bins 9, 6 and 4).
MARGINS = {"red": 4.0, "green": 1.5, "blue": 0.5}


def _colour_model(path: Path) -> Path:
    """A tiny3d whose top-1 label is the colour of the video: its random features of the three solid
    colours are mapped onto the classes by least squares (no training, well under a second)."""
    import torch

    from actionrec.data.transforms import normalize_ncthw
    from actionrec.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("tiny3d", list(COLOURS), width=4)
    model.spec = model.spec.replace(frames_per_clip=4, short_side=32, crop_size=32)
    clips = torch.tensor(list(COLOURS.values()), dtype=torch.uint8).view(3, 1, 1, 1, 3).expand(3, 4, 32, 32, 3)
    net = model.module.eval()
    with torch.no_grad():
        features = torch.amax(net.features(normalize_ncthw(clips.contiguous(), model.spec)), dim=(2, 3, 4))
        target = torch.diag(torch.tensor(list(MARGINS.values())))  # logits: the margin on the true class, else 0
        net.head[1].weight.copy_(torch.linalg.lstsq(features, target).solution.T)
        net.head[1].bias.zero_()
    save_checkpoint(model, path, {"model_name": "colours"})
    return path


def _colour_video(path: Path, rgb: tuple[int, int, int], frames: int = 8) -> Path:
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), rgb, np.uint8), format="rgb24")
        for _ in range(frames):
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_a_shifted_class_mix_is_flagged_and_an_unchanged_one_is_not(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.tag import tag_flow

    model = _colour_model(tmp_path / "colours" / "model.pt")
    samples = {c: _colour_video(tmp_path / f"{c}.mp4", rgb) for c, rgb in COLOURS.items()}
    lake = str(tmp_path / "lake")

    def night(name: str, **mix: int):
        src = tmp_path / name
        src.mkdir()
        for colour, n in mix.items():
            for i in range(n):
                shutil.copy(samples[colour], src / f"{colour}-{i:02d}.mp4")
        state = tag_flow(source=str(src), lake=lake, model=str(model), clips=1, drift_min_videos=12,
                         return_state=True)
        return state.result(), state.state_details.flow_run_id

    first, _ = night("night-1", red=4, green=4, blue=4)
    same, same_flow = night("night-2", red=4, green=4, blue=4)
    shifted, shifted_flow = night("night-3", red=10, green=1, blue=1)

    labels = query(lake, "SELECT top1_label, count(*) FROM predictions WHERE run_id = ? GROUP BY 1 ORDER BY 1",
                   [shifted["run_id"]])[1]
    assert labels == [("blue", 1), ("green", 1), ("red", 10)]  # the model tells the colours apart
    assert (first["drift_flag"], first["drift_labels"], first["drift_reason"]) == (False, None, NO_EARLIER_RUNS)
    assert (same["drift_flag"], same["drift_labels"], same["drift_confidence"]) == (False, 0.0, 0.0)
    assert same["drift_reason"].startswith("no shift")
    assert shifted["drift_flag"] and shifted["drift_labels"] > 0.1 and shifted["drift_confidence"] > 0.1
    assert shifted["drift_reason"].startswith("shift: the label mix and the confidences moved past 0.1 bits")
    assert "the last 2 runs of colours (24 videos)" in shifted["drift_reason"]

    cols, rows = query(lake, "SELECT * FROM drift")
    assert cols == ["run_id", "started_at", "model_name", "model_version", "videos", "drift_measure",
                    "drift_labels", "drift_confidence", "drift_flag", "drift_reason"]
    assert [(r[0], r[4], r[5], r[8]) for r in rows] == [(first["run_id"], 12, "jensen-shannon", False),
                                                        (same["run_id"], 12, "jensen-shannon", False),
                                                        (shifted["run_id"], 12, "jensen-shannon", True)]

    with get_client(sync_client=True) as client:
        def artifacts(key: str, flow_run_id) -> list:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return [a for a in found if a.flow_run_id == flow_run_id]

        assert artifacts("tag-drift", same_flow) == []
        (drift_md,) = artifacts("tag-drift", shifted_flow)
        (summary,) = artifacts("tag-run-summary", shifted_flow)
    assert "| red | 83.3% | 33.3% | +50.0 pts |" in str(drift_md.data)
    assert "## Drift" in str(summary.data) and "| **yes** |" in str(summary.data)
