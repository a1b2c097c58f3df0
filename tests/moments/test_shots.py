"""Shot changes on a stream of frames: hard cuts, fades through black, and what is not a change."""

from __future__ import annotations

import numpy as np
import pytest

from actionrec.errors import ConfigError
from actionrec.moments.shots import ShotDetector, ShotRules

RNG = np.random.default_rng(0)
COLOURS = {"r": (200, 40, 40), "g": (40, 180, 60), "w": (220, 220, 220), "k": (0, 0, 0), "d": (110, 110, 110)}


def frames(spec: str, noise: float = 12.0, size: int = 48):
    """One frame per character: a solid colour with noise ("k" is black, "d" a dimmer grey)."""
    for ch in spec:
        base = np.array(COLOURS[ch], np.float64)[None, None, :]
        yield np.clip(base + RNG.normal(0, noise, (size, size, 3)), 0, 255).astype(np.uint8)


# (frames 0.25 s apart, expected changes: (time, kind))
CASES = [
    ("rrrrgggg", [(1.0, "cut")]),
    ("rrrrwwwwrrrr", [(1.0, "cut"), (2.0, "cut")]),
    # a fade through black: the change is the middle of the dark run; no cut on entering or leaving it
    ("rrrrkkkgggg", [(1.25, "fade")]),
    # a dark opening or ending is not a change (nothing lit on one side)
    ("kkkrrrrrkk", []),
    # noise is not a cut; a sudden halving of the light is
    ("rrrrrrrrrrrr", []),
    ("wwwwdddd", [(1.0, "cut")]),
    # two cuts closer than min_shot_s (0.5 s): the second is not a new shot
    ("rrrrgrrrr", [(1.0, "cut")]),
]


@pytest.mark.parametrize("spec,expected", CASES)
def test_shot_changes_table(spec, expected):
    d = ShotDetector()
    for i, f in enumerate(frames(spec)):
        d.add(i * 0.25, f)
    assert d.changes() == expected


def test_shots_cover_the_video():
    d = ShotDetector()
    for i, f in enumerate(frames("rrrrgggg")):
        d.add(i * 0.25, f)
    assert [(s.start_s, s.end_s, s.start_kind) for s in d.shots(2.0)] == [(0.0, 1.0, "start"), (1.0, 2.0, "cut")]


def test_bad_rules_say_which():
    with pytest.raises(ConfigError, match="cut threshold"):
        ShotRules(cut_threshold=-1)


def test_a_gradual_change_of_light_is_not_a_cut():
    d = ShotDetector()
    for i in range(13):  # white dimming to grey over 3 s
        level = 220 - 9 * i
        d.add(i * 0.25, np.clip(level + RNG.normal(0, 12, (48, 48, 3)), 0, 255).astype(np.uint8))
    assert d.changes() == []
