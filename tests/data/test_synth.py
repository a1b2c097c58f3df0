"""The synthetic temporal dataset: classes look the way their names say, and pairs differ only in order."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from actionrec.data.synth import (
    CLASSES,
    TEMPORAL_PAIRS,
    SynthConfig,
    augmentation_rules,
    render_video,
    write_dataset,
)
from actionrec.errors import ConfigError
from actionrec.io.video import VideoReader, read_frames

SEEDS = range(8)


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _distance_to_background(frames: np.ndarray) -> np.ndarray:
    """Per-pixel colour distance [T, H, W] from the background, estimated from the border pixels."""
    f = frames.astype(np.float32)
    border = np.concatenate(
        [
            f[:, 0].reshape(-1, 3),
            f[:, -1].reshape(-1, 3),
            f[:, :, 0].reshape(-1, 3),
            f[:, :, -1].reshape(-1, 3),
        ]
    )
    return np.linalg.norm(f - np.median(border, axis=0), axis=-1)


def _mask(frames: np.ndarray) -> np.ndarray:
    """Object pixels: farther from the background colour than gradient, noise and compression reach."""
    return _distance_to_background(frames) > 50.0


def _centroid_x(frames: np.ndarray) -> np.ndarray:
    mask = _mask(frames)
    xs = np.arange(frames.shape[2])
    return (mask * xs).sum(axis=(1, 2)) / np.maximum(mask.sum(axis=(1, 2)), 1)


def _orientation_turn(frames: np.ndarray) -> float:
    """Total turn in radians of the object's principal axis; positive is clockwise on screen (y down)."""
    mask = _mask(frames).astype(np.float64)
    ys, xs = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]]
    angles = []
    for m in mask:
        w = m.sum()
        cx, cy = (m * xs).sum() / w, (m * ys).sum() / w
        mu20, mu02 = (m * (xs - cx) ** 2).sum(), (m * (ys - cy) ** 2).sum()
        mu11 = (m * (xs - cx) * (ys - cy)).sum()
        angles.append(0.5 * math.atan2(2 * mu11, mu20 - mu02))
    steps = np.diff(angles)
    steps = (steps + math.pi / 2) % math.pi - math.pi / 2  # an axis is defined modulo 180 degrees
    return float(steps.sum())


def _trend(values: np.ndarray) -> float:
    """Correlation of a per-frame measure with time: +1 rises steadily, -1 falls steadily."""
    return float(np.corrcoef(np.arange(len(values)), values)[0, 1])


# -- rendering ---------------------------------------------------------------------------------------------
def test_classes_and_pairs() -> None:
    assert CLASSES == (
        "moving left",
        "moving right",
        "growing",
        "shrinking",
        "rotating clockwise",
        "rotating counter-clockwise",
        "appearing",
        "disappearing",
    )
    assert TEMPORAL_PAIRS == (
        ("moving left", "moving right"),
        ("growing", "shrinking"),
        ("rotating clockwise", "rotating counter-clockwise"),
        ("appearing", "disappearing"),
    )


@pytest.mark.parametrize("label", CLASSES)
@pytest.mark.parametrize(("size", "num_frames"), [(64, 32), (32, 8)])
def test_every_class_renders(label: str, size: int, num_frames: int) -> None:
    frames = render_video(label, _rng(1), size=size, num_frames=num_frames)
    assert frames.shape == (num_frames, size, size, 3)
    assert frames.dtype == np.uint8
    assert _mask(frames).any(axis=(1, 2)).sum() >= num_frames // 2, "the shape is visible in most frames"


def test_same_seed_same_video_other_seed_other_video() -> None:
    for label in CLASSES:
        np.testing.assert_array_equal(render_video(label, _rng(3)), render_video(label, _rng(3)))
        assert not np.array_equal(render_video(label, _rng(3)), render_video(label, _rng(4)))


@pytest.mark.parametrize(("first", "second"), TEMPORAL_PAIRS)
def test_pair_members_hold_the_same_frames_in_reverse_order(first: str, second: str) -> None:
    """Why an order-blind model is at chance within a pair: the frame sets are drawn identically."""
    for seed in SEEDS:
        np.testing.assert_array_equal(render_video(second, _rng(seed)), render_video(first, _rng(seed))[::-1])


def test_moving_left_and_right() -> None:
    for seed in SEEDS:
        left, right = render_video("moving left", _rng(seed)), render_video("moving right", _rng(seed + 100))
        for frames, sign in ((left, -1), (right, 1)):
            x = _centroid_x(frames)
            assert sign * _trend(x) > 0.95
            assert sign * (x[-1] - x[0]) >= 0.35 * frames.shape[2], "moves across a good part of the frame"


def test_growing_and_shrinking() -> None:
    for seed in SEEDS:
        for label, sign in (("growing", 1), ("shrinking", -1)):
            area = _mask(render_video(label, _rng(seed))).sum(axis=(1, 2)).astype(float)
            assert sign * _trend(area) > 0.9
            assert max(area[0], area[-1]) > 4 * min(area[0], area[-1])


def test_appearing_and_disappearing() -> None:
    for seed in SEEDS:
        for label, sign in (("appearing", 1), ("disappearing", -1)):
            frames = render_video(label, _rng(seed))
            visibility = _distance_to_background(frames).mean(axis=(1, 2))
            assert sign * _trend(visibility) > 0.85
            hidden, shown = (0, -1) if sign > 0 else (-1, 0)
            assert not _mask(frames[[hidden]]).any(), "nothing is there at the empty end"
            assert _mask(frames[[shown]]).sum() > 30


def test_rotation_direction() -> None:
    for seed in SEEDS:
        clockwise = render_video("rotating clockwise", _rng(seed))
        counter = render_video("rotating counter-clockwise", _rng(seed + 100))
        assert math.radians(120) < _orientation_turn(clockwise) < math.radians(330)
        assert -math.radians(330) < _orientation_turn(counter) < -math.radians(120)


def test_hflip_maps_classes_as_the_augmentation_rules_say() -> None:
    rules = augmentation_rules()
    assert rules["hflip"] == {
        "moving left": "moving right",
        "moving right": "moving left",
        "rotating clockwise": "rotating counter-clockwise",
        "rotating counter-clockwise": "rotating clockwise",
    }
    pairs = {a: b for a, b in TEMPORAL_PAIRS} | {b: a for a, b in TEMPORAL_PAIRS}
    assert rules["reverse"] == pairs
    for seed in SEEDS:
        clockwise = render_video("rotating clockwise", _rng(seed))
        flipped = clockwise[:, :, ::-1]
        assert not np.array_equal(flipped, clockwise)
        assert _orientation_turn(flipped) < -math.radians(120), (
            "a mirrored clockwise turn is counter-clockwise"
        )
        assert _trend(_centroid_x(render_video("moving left", _rng(seed))[:, :, ::-1])) > 0.95


def test_render_rejects_unknown_label_and_tiny_sizes() -> None:
    with pytest.raises(ConfigError, match="label"):
        render_video("jumping", _rng(0))
    with pytest.raises(ConfigError, match="num_frames"):
        render_video("growing", _rng(0), num_frames=1)
    with pytest.raises(ConfigError, match="size"):
        render_video("growing", _rng(0), size=4)


# -- configuration -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("per_class", 0),
        ("per_class", 2.5),
        ("seed", -1),
        ("size", 8),
        ("size", 63),
        ("num_frames", 1),
        ("fps", 0),
        ("val_fraction", 1.0),
        ("val_fraction", -0.1),
    ],
)
def test_config_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        SynthConfig(**{field: value})


def test_config_is_frozen() -> None:
    config = SynthConfig()
    with pytest.raises(AttributeError):
        config.per_class = 3  # type: ignore[misc]


# -- the dataset on disk -----------------------------------------------------------------------------------
SMALL = SynthConfig(per_class=2, seed=7, size=32, num_frames=8, fps=8)


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_write_dataset_lists_every_video_and_they_decode(tmp_path: Path) -> None:
    csv_path = write_dataset(tmp_path, SMALL)
    assert csv_path == tmp_path / "labels.csv"
    rows = _rows(csv_path)
    assert list(rows[0]) == ["video_uri", "label"]
    assert sorted(r["label"] for r in rows) == sorted(CLASSES * SMALL.per_class)
    assert rows[0]["video_uri"] == "videos/moving_left/moving_left_7_0000.mp4"
    on_disk = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "videos").rglob("*.mp4")}
    assert on_disk == {r["video_uri"] for r in rows}
    for row in rows:
        path = tmp_path / row["video_uri"]
        assert not Path(row["video_uri"]).is_absolute()
        with VideoReader(path) as reader:
            info = reader.info()
        assert (info.num_frames, info.width, info.height) == (8, 32, 32)
        frames = read_frames(path, [0.1, 0.9])
        assert frames.shape == (2, 32, 32, 3) and frames.dtype == np.uint8
        if row["label"] in ("moving left", "moving right"):
            x = _centroid_x(frames)
            assert (x[1] < x[0]) == (row["label"] == "moving left"), "frames were written in order"
    rules = json.loads((tmp_path / "augment.json").read_text(encoding="utf-8"))
    assert rules == {**augmentation_rules(), "classes": list(CLASSES)}


def test_write_dataset_is_deterministic_and_seeds_merge(tmp_path: Path) -> None:
    write_dataset(tmp_path / "a", SMALL)
    write_dataset(tmp_path / "b", SynthConfig(per_class=3, seed=7, size=32, num_frames=8, fps=8))
    write_dataset(tmp_path / "b", SynthConfig(per_class=2, seed=8, size=32, num_frames=8, fps=8))
    name = "videos/growing/growing_7_0001.mp4"
    np.testing.assert_array_equal(
        read_frames(tmp_path / "a" / name, [0.0, 0.5]), read_frames(tmp_path / "b" / name, [0.0, 0.5])
    )
    # Seed 8 landed beside seed 7 in the same folders without overwriting it.
    assert len(list((tmp_path / "b" / "videos").rglob("*.mp4"))) == len(CLASSES) * (3 + 2)


def test_write_dataset_split_column(tmp_path: Path) -> None:
    config = SynthConfig(per_class=4, seed=1, size=32, num_frames=4, fps=4, val_fraction=0.3)
    first = _rows(write_dataset(tmp_path / "a", config))
    assert list(first[0]) == ["video_uri", "label", "split"]
    assert {r["split"] for r in first} == {"train", "val"}
    assert first == _rows(write_dataset(tmp_path / "b", config)), "the split is stable"


def test_write_dataset_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_dataset(tmp_path, SynthConfig(per_class=1, size=16, num_frames=2, fps=2), progress=True)
    assert "8/8" in capsys.readouterr().err
