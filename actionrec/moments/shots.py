"""Shot changes, found on the frames a dense pass already decodes (no second pass over the video).

Each frame is shrunk to a small thumbnail by area averaging (which also averages away sensor
noise); a hard cut is a jump in the mean absolute difference between consecutive thumbnails past
``cut_threshold`` (0-255 scale, like PySceneDetect's content detector, but on RGB thumbnails, where
the hue of grey or dark pixels cannot make noise look like a cut). A fade is a run of dark frames
(mean below ``dark_level``) between two lit ones; its change is the middle of the dark run. Nothing
is cut inside a dark run or sooner than ``min_shot_s`` after the last change. A change is placed at
the first frame seen of the new shot: its time is exact when every frame is seen, and late by less
than one sampling step otherwise (bench/moments.py measures both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actionrec.errors import ConfigError
from actionrec.inference.results import Shot

THUMB = 32  # thumbnail side, pixels


@dataclass(frozen=True)
class ShotRules:
    cut_threshold: float = 30.0
    dark_level: float = 12.0
    min_shot_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("cut_threshold", "dark_level", "min_shot_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"shot {name.replace('_', ' ')} must be a finite number >= 0, got {v!r}")


def thumbnail(frame_hwc: np.ndarray, side: int = THUMB) -> np.ndarray:
    """Area-averaged float32 thumbnail, at most ``side`` on each axis (an exact block mean)."""
    h, w, _ = frame_hwc.shape
    bh, bw = max(h // side, 1), max(w // side, 1)
    th, tw = h // bh, w // bw
    blocks = frame_hwc[: th * bh, : tw * bw].reshape(th, bh, tw, bw, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


class ShotDetector:
    """Feed frames in time order (``add``), then ask for the ``shots`` of the video."""

    def __init__(self, rules: ShotRules | None = None) -> None:
        self.rules = rules or ShotRules()
        self._previous: np.ndarray | None = None
        self._changes: list[tuple[float, str]] = []
        self._dark_since: float | None = None  # when the current dark run began
        self._dark_last = 0.0
        self._lit_before = False  # a lit frame came before the current dark run
        self.scores: list[tuple[float, float]] = []  # (time, difference from the frame before): for tuning

    def _change(self, t: float, kind: str) -> None:
        last = self._changes[-1][0] if self._changes else 0.0
        if t - last >= self.rules.min_shot_s:
            self._changes.append((t, kind))

    def add(self, t: float, frame_hwc: np.ndarray) -> None:
        thumb = thumbnail(frame_hwc)
        dark = float(thumb.mean()) < self.rules.dark_level
        if dark:
            if self._dark_since is None:
                self._dark_since = t
            self._dark_last = t
        else:
            if self._dark_since is not None:  # a dark run ends: a fade, if something was lit before it
                if self._lit_before:
                    self._change((self._dark_since + self._dark_last) / 2, "fade")
                self._dark_since = None
            elif self._previous is not None:
                score = float(np.abs(thumb - self._previous).mean()) if thumb.shape == self._previous.shape else 255.0
                self.scores.append((t, score))
                if score >= self.rules.cut_threshold:
                    self._change(t, "cut")
            self._lit_before = True
        self._previous = thumb

    def changes(self) -> list[tuple[float, str]]:
        return list(self._changes)

    def shots(self, duration_s: float) -> list[Shot]:
        """The video cut at each change, from 0 to ``duration_s``."""
        starts = [(0.0, "start"), *[(t, k) for t, k in self._changes if 0 < t < duration_s]]
        ends = [t for t, _ in starts[1:]] + [float(duration_s)]
        return [Shot(s, e, kind) for (s, kind), e in zip(starts, ends, strict=True)]
