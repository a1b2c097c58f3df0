"""Synthetic temporal dataset: short videos of one shape whose classes come in time-reversed pairs.

Why it is built this way:
- Each pair, such as (moving left, moving right), differs only in frame order. The second class of a
  pair is rendered by drawing the first class's sequence and reversing time, so the multiset of frames
  has exactly the same distribution for both. A model that averages per-frame features is therefore at
  chance within every pair; only a model that sees order can separate it.
- Every random choice is mirror invariant (start and end positions symmetric about the centre, angles
  uniform, shapes that each have a mirror axis), so a horizontal flip maps a class onto a class:
  moving left <-> moving right and rotating clockwise <-> rotating counter-clockwise (in image
  coordinates, with y pointing down, "clockwise" is as seen on screen). ``augmentation_rules`` says so.
- Rotation uses elongated shapes with no rotational symmetry below 180 degrees (a rotating circle is
  invisible) and turns less than 30 degrees a frame, so the direction is never ambiguous.
- Rendering is numpy only: signed distances on a pixel grid, one pixel of anti-aliasing, evaluated only
  in the window the shape ever touches, so drawing costs less than encoding.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionrec.data.labels import hash_split
from actionrec.errors import ConfigError
from actionrec.io import atomic
from actionrec.io.video import write_video

CLASSES: tuple[str, ...] = (
    "moving left",
    "moving right",
    "growing",
    "shrinking",
    "rotating clockwise",
    "rotating counter-clockwise",
    "appearing",
    "disappearing",
)
TEMPORAL_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (CLASSES[i], CLASSES[i + 1]) for i in range(0, len(CLASSES), 2)
)
# The second class of each pair is the first one played backwards.
_REVERSED_OF: dict[str, str] = {second: first for first, second in TEMPORAL_PAIRS}

# Smallest frame we can draw a recognisable shape in; frames shorter than 2 have no order.
_MIN_SIZE = 16
_MIN_FRAMES = 2
# Foreground must stand out from the background, also after 4:2:0 chroma subsampling (hence luma).
_MIN_COLOUR_DISTANCE = 120.0
_MIN_LUMA_DIFFERENCE = 50.0
_MAX_TURN_PER_FRAME = math.radians(30.0)
_CHUNK_PIXELS = 8192  # pixels per frame chunk while drawing (see _draw)

Sdf = Callable[[np.ndarray, np.ndarray], np.ndarray]


# -- shapes: signed distance in local units (negative inside), shape roughly fills the unit disc -----------
def _box(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    return np.maximum(np.abs(u) - half_u, np.abs(v) - half_v)


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v) - 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _box(u, v, 0.8, 0.8)


_TRI_DIRS = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Equilateral triangle with circumradius 1.1 (its edges lie at distance 0.55 from the centre)."""
    d = [u * nu + v * nv for nu, nv in _TRI_DIRS]
    return np.maximum(np.maximum(d[0], d[1]), d[2]) - 0.55


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.minimum(_box(u, v, 1.0, 0.3), _box(u, v, 0.3, 1.0))


def _bar(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _box(u, v, 1.0, 0.22)


_PTR_N = (0.45 / math.hypot(0.45, 2.0), 2.0 / math.hypot(0.45, 2.0))


def _pointer(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Long isosceles triangle, tip at (1, 0), base on u = -1: shows which way it points."""
    du = u - 1.0
    upper = du * _PTR_N[0] + v * _PTR_N[1]
    lower = du * _PTR_N[0] - v * _PTR_N[1]
    return np.maximum(np.maximum(upper, lower), -u - 1.0)


def _hand(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A clock hand: a thin bar with a disc at one end."""
    disc = np.sqrt((u - 0.62) ** 2 + v * v) - 0.38
    return np.minimum(_box(u + 0.2, v, 0.8, 0.14), disc)


# name -> (signed distance, radius of the disc that holds the shape at any angle)
_SHAPES: dict[str, tuple[Sdf, float]] = {
    "circle": (_circle, 1.0),
    "square": (_square, 0.8 * math.sqrt(2.0)),
    "triangle": (_triangle, 1.1),
    "cross": (_cross, math.hypot(1.0, 0.3)),
    "bar": (_bar, math.hypot(1.0, 0.22)),
    "pointer": (_pointer, math.hypot(1.0, 0.45)),
    "hand": (_hand, 1.0),
}
# Elongated shapes with a mirror axis: orientation is visible, and a mirrored shape is a rotated one.
_ROTATABLE = ("bar", "pointer", "hand")


# -- configuration ---------------------------------------------------------------------------------------
def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")


@dataclass(frozen=True)
class SynthConfig:
    """How many videos to draw, and their size. ``size`` must be even (H.264 4:2:0 needs even sides)."""

    per_class: int = 40
    seed: int = 0
    size: int = 64
    num_frames: int = 32
    fps: int = 16
    val_fraction: float = 0.0  # if > 0, labels.csv gets a 'split' column (train/val) by a stable hash

    def __post_init__(self) -> None:
        _check_int("per_class", self.per_class, 1)
        _check_int("seed", self.seed, 0)
        _check_int("size", self.size, _MIN_SIZE)
        if self.size % 2:
            raise ConfigError(
                f"size must be even (H.264 with 4:2:0 chroma needs even sides), got {self.size}"
            )
        _check_int("num_frames", self.num_frames, _MIN_FRAMES)
        _check_int("fps", self.fps, 1)
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, int | float):
            raise ConfigError(f"val_fraction must be a number, got {self.val_fraction!r}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


# -- rendering -------------------------------------------------------------------------------------------
def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and a foreground that differs clearly in colour and in brightness."""
    luma = np.array([0.299, 0.587, 0.114])
    bg = rng.uniform(0.0, 255.0, size=3)
    for _ in range(100):
        fg = rng.uniform(0.0, 255.0, size=3)
        if (
            np.linalg.norm(fg - bg) >= _MIN_COLOUR_DISTANCE
            and abs(float((fg - bg) @ luma)) >= _MIN_LUMA_DIFFERENCE
        ):
            return bg, fg
    # Practically unreachable; black or white, whichever is farther, always qualifies.
    fg = np.zeros(3) if float(bg @ luma) > 127.5 else np.full(3, 255.0)
    return bg, fg


def _background(rng: np.random.Generator, size: int, colour: np.ndarray) -> np.ndarray:
    """Solid colour with a mild linear gradient and static noise, float [H, W, 3]; at most ~16 off."""
    angle = rng.uniform(0.0, 2.0 * math.pi)
    amplitude = rng.uniform(0.0, 10.0)
    grid = (np.arange(size) + 0.5) / size - 0.5
    ramp = math.cos(angle) * grid[None, :] + math.sin(angle) * grid[:, None]  # in [-0.71, 0.71]
    noise = np.clip(rng.normal(0.0, 2.0, size=(size, size, 1)), -6.0, 6.0)
    return colour[None, None, :] + (2.0 * amplitude * ramp)[:, :, None] + noise


def _draw(
    rng: np.random.Generator,
    size: int,
    shape: str,
    cx: np.ndarray,
    cy: np.ndarray,
    radius: np.ndarray,
    angle: np.ndarray,
    alpha: np.ndarray,
) -> np.ndarray:
    """Composite one shape over a background; per-frame arrays of length T give its pose and opacity."""
    bg_colour, fg_colour = _colours(rng)
    background = _background(rng, size, bg_colour)
    sdf, bound = _SHAPES[shape]
    # Both ends of the blend lie in [0, 255], so the sum needs no clipping; + 0.5 then truncate rounds.
    base = (np.clip(background, 0.0, 255.0) + 0.5).astype(np.float32)
    out = np.empty((len(cx), size, size, 3), dtype=np.uint8)
    out[:] = base.astype(np.uint8)
    # Only the window the shape ever touches needs drawing (often under half the frame).
    reach = np.asarray(radius) * bound + 3.0  # the anti-aliased tip of the pointer reaches 2.3 px out
    x0, x1 = _window(np.asarray(cx) - reach, np.asarray(cx) + reach, size)
    y0, y1 = _window(np.asarray(cy) - reach, np.asarray(cy) + reach, size)
    if x0 >= x1 or y0 >= y1:
        return out
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5  # pixel centres; a mirror maps x to size - x
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5
    base, delta = base[y0:y1, x0:x1], fg_colour.astype(np.float32) + 0.5 - base[y0:y1, x0:x1]
    params = np.stack([cx, cy, np.cos(angle), np.sin(angle), radius, alpha]).astype(np.float32)
    # A few frames at a time: temporaries stay small enough for the allocator to reuse them, where
    # whole-clip temporaries cost a page fault per 4 KiB on every allocation.
    step = max(1, _CHUNK_PIXELS // (len(xs) * len(ys)))
    for first in range(0, len(cx), step):
        px, py, cos, sin, r, a = params[:, first : first + step, None, None]
        dx = xs[None, None, :] - px
        dy = ys[None, :, None] - py
        # Local axes turned by +angle; with y pointing down a growing angle turns clockwise on screen.
        u = (cos * dx + sin * dy) / r
        v = (cos * dy - sin * dx) / r
        coverage = np.clip(0.5 - sdf(u, v) * r, 0.0, 1.0) * a
        out[first : first + step, y0:y1, x0:x1] = coverage[..., None] * delta + base
    return out


def _window(low: np.ndarray, high: np.ndarray, size: int) -> tuple[int, int]:
    """Pixel range [start, stop) covering every frame's [low, high] interval, clamped to the frame."""
    return max(0, math.floor(float(low.min()))), min(size, math.ceil(float(high.max())))


def _place(rng: np.random.Generator, size: int, extent: float) -> float:
    """A centre coordinate that keeps a disc of radius ``extent`` inside the frame (centre if it cannot)."""
    low, high = extent + 0.5, size - extent - 0.5
    return float(rng.uniform(low, high)) if high > low else size / 2.0


def _moving_left(rng: np.random.Generator, size: int, t: np.ndarray) -> np.ndarray:
    shape = str(rng.choice(list(_SHAPES)))
    radius = rng.uniform(0.10, 0.17) * size
    extent = radius * _SHAPES[shape][1]
    travel = min(rng.uniform(0.45, 0.70) * size, size - 2.0 * extent - 1.0)
    # Start uniform over the positions that keep the whole path inside: symmetric about the centre.
    start = rng.uniform(extent + 0.5 + travel, size - extent - 0.5)
    cy = _place(rng, size, extent)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    n = len(t)
    return _draw(
        rng,
        size,
        shape,
        start - travel * t,
        np.full(n, cy),
        np.full(n, radius),
        np.full(n, angle),
        np.ones(n),
    )


def _growing(rng: np.random.Generator, size: int, t: np.ndarray) -> np.ndarray:
    shape = str(rng.choice(list(_SHAPES)))
    bound = _SHAPES[shape][1]
    small = rng.uniform(0.05, 0.09) * size
    big = rng.uniform(0.28, 0.40) * size / bound
    cx, cy = _place(rng, size, big * bound), _place(rng, size, big * bound)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    n = len(t)
    radius = small + (big - small) * t
    return _draw(rng, size, shape, np.full(n, cx), np.full(n, cy), radius, np.full(n, angle), np.ones(n))


def _rotating_clockwise(rng: np.random.Generator, size: int, t: np.ndarray) -> np.ndarray:
    shape = str(rng.choice(list(_ROTATABLE)))
    radius = rng.uniform(0.25, 0.36) * size
    extent = radius * _SHAPES[shape][1]
    cx, cy = _place(rng, size, extent), _place(rng, size, extent)
    turn = rng.uniform(math.radians(150.0), math.radians(300.0))
    turn = min(turn, _MAX_TURN_PER_FRAME * (len(t) - 1))
    start = rng.uniform(0.0, 2.0 * math.pi)
    n = len(t)
    return _draw(
        rng, size, shape, np.full(n, cx), np.full(n, cy), np.full(n, radius), start + turn * t, np.ones(n)
    )


def _appearing(rng: np.random.Generator, size: int, t: np.ndarray) -> np.ndarray:
    shape = str(rng.choice(list(_SHAPES)))
    radius = rng.uniform(0.14, 0.24) * size
    extent = radius * _SHAPES[shape][1]
    cx, cy = _place(rng, size, extent), _place(rng, size, extent)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    # Fade in from nothing over most of the clip; invisible at the start, fully there at the end.
    begin, end = rng.uniform(0.0, 0.25), rng.uniform(0.65, 0.9)
    alpha = np.clip((t - begin) / (end - begin), 0.0, 1.0)
    n = len(t)
    return _draw(
        rng, size, shape, np.full(n, cx), np.full(n, cy), np.full(n, radius), np.full(n, angle), alpha
    )


_RENDERERS: dict[str, Callable[[np.random.Generator, int, np.ndarray], np.ndarray]] = {
    "moving left": _moving_left,
    "growing": _growing,
    "rotating clockwise": _rotating_clockwise,
    "appearing": _appearing,
}


def render_video(label: str, rng: np.random.Generator, size: int = 64, num_frames: int = 32) -> np.ndarray:
    """uint8 RGB frames ``[T, H, W, 3]`` of one video of ``label``; the same rng state gives the same video.

    The second class of each pair is the first class's video reversed in time, so with the same rng
    state ``render_video(second) == render_video(first)[::-1]``.
    """
    if label not in CLASSES:
        raise ConfigError(f"label must be one of {list(CLASSES)}, got {label!r}")
    _check_int("size", size, _MIN_SIZE)
    _check_int("num_frames", num_frames, _MIN_FRAMES)
    t = np.linspace(0.0, 1.0, int(num_frames))
    if label in _REVERSED_OF:
        return np.ascontiguousarray(_RENDERERS[_REVERSED_OF[label]](rng, int(size), t)[::-1])
    return _RENDERERS[label](rng, int(size), t)


def augmentation_rules() -> dict[str, dict[str, str]]:
    """Label maps of the transforms that turn one class into another; absent classes keep their label."""
    hflip = {
        "moving left": "moving right",
        "moving right": "moving left",
        "rotating clockwise": "rotating counter-clockwise",
        "rotating counter-clockwise": "rotating clockwise",
    }
    partner = {a: b for a, b in TEMPORAL_PAIRS} | {b: a for a, b in TEMPORAL_PAIRS}
    reverse = {label: partner[label] for label in CLASSES}
    return {"hflip": hflip, "reverse": reverse}


# -- the dataset on disk ---------------------------------------------------------------------------------
def _slug(label: str) -> str:
    return label.replace(" ", "_")


def write_dataset(
    out_dir: str | Path, config: SynthConfig = SynthConfig(), *, progress: bool = False
) -> Path:
    """Write videos, ``labels.csv`` and ``augment.json`` under ``out_dir``; returns the CSV's path.

    Video ``i`` of a class depends only on (seed, class, i), not on ``per_class``, and its file name
    carries the seed, so draws with different seeds can be merged into one folder without clashes.
    An existing labels.csv in ``out_dir`` is replaced.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(ci, label, i) for ci, label in enumerate(CLASSES) for i in range(config.per_class)]
    rows: list[dict[str, str]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="synth videos", unit="video")
    try:
        for ci, label, i in jobs:
            seq = np.random.SeedSequence(entropy=config.seed, spawn_key=(ci, i))
            frames = render_video(
                label, np.random.Generator(np.random.PCG64(seq)), config.size, config.num_frames
            )
            rel = Path("videos") / _slug(label) / f"{_slug(label)}_{config.seed}_{i:04d}.mp4"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            write_video(
                out / rel, frames, config.fps, codec="libx264", options={"crf": "18", "preset": "ultrafast"}
            )
            row = {"video_uri": rel.as_posix(), "label": label}
            if config.val_fraction > 0:
                row["split"] = hash_split(rel.as_posix(), val=float(config.val_fraction), test=0.0)
            rows.append(row)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    columns = ["video_uri", "label"] + (["split"] if config.val_fraction > 0 else [])
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    csv_path = atomic.write_text(out / "labels.csv", text.getvalue())
    rules: dict[str, object] = {**augmentation_rules(), "classes": list(CLASSES)}
    atomic.write_text(out / "augment.json", json.dumps(rules, indent=2) + "\n")
    return csv_path
