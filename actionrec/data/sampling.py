"""Which instants of a video a model sees: pure arithmetic on exact fractions, no decoding.

Times are seconds from the first frame (the first frame is at 0). A sampled instant is then
turned into a frame by the reader's rule "the frame on screen at t" (the last frame whose
presentation time is <= t). Instants are placed in the middle of a frame's display interval,
so rounding in container timestamps can never tip a sample onto a neighbouring frame.
Instants past the end are allowed on purpose: the reader answers them with the last frame,
which is how a video shorter than a clip repeats its last frame instead of failing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from actionrec.errors import ConfigError

SAMPLING_RULES = ("fps", "stride", "spread")


def exact(value: float | Fraction) -> Fraction:
    """A rate or time as an exact fraction; a float is read to the microsecond (7.5 -> 15/2,
    29.97 -> 2997/100), so arithmetic on it never drifts."""
    if isinstance(value, Fraction | int):
        return Fraction(value)
    return Fraction(value).limit_denominator(1_000_000)


@dataclass(frozen=True)
class ClipSampling:
    """How one clip is laid out in time.

    ``fps``: ``frames_per_clip`` frames ``1 / sample_fps`` seconds apart, so a clip covers the same
    ``frames_per_clip / sample_fps`` seconds whatever the source frame rate (a 60 fps video is
    subsampled, an 8 fps one repeats frames). ``stride``: frames ``frame_stride`` source frames
    apart (the window then depends on the source rate: kept for checkpoints that were trained that
    way). ``spread``: the frames are spread evenly over the clip's window (a ``1/num_clips`` share
    of the video), whatever its length (TSN).
    """

    frames_per_clip: int = 16
    rule: str = "fps"
    frame_stride: int = 2
    sample_fps: float | None = 15.0

    def __post_init__(self) -> None:
        if not isinstance(self.frames_per_clip, int) or self.frames_per_clip < 1:
            raise ConfigError(f"frames_per_clip must be an integer >= 1, got {self.frames_per_clip!r}")
        if self.rule not in SAMPLING_RULES:
            raise ConfigError(f"rule must be one of {SAMPLING_RULES}, got {self.rule!r}")
        if not isinstance(self.frame_stride, int) or self.frame_stride < 1:
            raise ConfigError(f"frame_stride must be an integer >= 1, got {self.frame_stride!r}")
        if self.rule == "fps":
            fps = self.sample_fps
            if not isinstance(fps, int | float) or isinstance(fps, bool) or not math.isfinite(fps) or fps <= 0:
                raise ConfigError(f"sample_fps must be a finite number > 0 for the 'fps' rule, got {fps!r}")


def _check(duration: Fraction, fps: Fraction, num_clips: int) -> None:
    if duration < 0:
        raise ConfigError(f"duration must be >= 0, got {duration}")
    if fps <= 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    if num_clips < 1:
        raise ConfigError(f"num_clips must be >= 1, got {num_clips}")


def clip_span(sampling: ClipSampling, fps: Fraction) -> Fraction:
    """Seconds covered by one ``fps`` or ``stride`` clip in a video of ``fps`` frames per second."""
    if sampling.rule == "fps":
        return Fraction(sampling.frames_per_clip) / exact(sampling.sample_fps)
    return Fraction(sampling.frames_per_clip * sampling.frame_stride) / Fraction(fps)


def uniform_clips(
    duration: Fraction, fps: Fraction, num_clips: int, sampling: ClipSampling
) -> list[list[Fraction]]:
    """``num_clips`` clips evenly spread over the video, for inference and evaluation.

    With the ``fps`` and ``stride`` rules, clip ``i`` is centred in the ``i``-th of ``num_clips`` equal
    slots of the span the clip start can take; a video shorter than one clip gets clips that
    start at 0 and run past the end (last frame repeated).
    """
    duration, fps = Fraction(duration), Fraction(fps)
    _check(duration, fps, num_clips)
    n = sampling.frames_per_clip
    if sampling.rule == "spread":
        window = duration / num_clips
        if window == 0:
            return [[Fraction(0)] * n for _ in range(num_clips)]
        return [
            [i * window + (2 * j + 1) * window / (2 * n) for j in range(n)] for i in range(num_clips)
        ]
    span = clip_span(sampling, fps)
    slack = max(duration - span, Fraction(0))
    clips = []
    for i in range(num_clips):
        start = slack * (2 * i + 1) / (2 * num_clips)
        clips.append(_clip_times(start, fps, sampling))
    return clips


def dense_clips(
    duration: Fraction, fps: Fraction, every: float | Fraction, sampling: ClipSampling
) -> Iterator[list[Fraction]]:
    """A clip every ``every`` seconds across the whole video (dense tagging), lazily: a 2-hour video
    is never held as a list of instants.

    With the ``fps`` and ``stride`` rules, clip ``k`` starts at ``k * every`` (snapped to a frame as
    uniform clips are) and clips are laid while they fit, so the last one ends less than ``every``
    before the end; a video shorter than one clip gets one clip from 0. With ``spread``, clip ``k``
    spreads its frames over the window ``[k * every, (k + 1) * every)``; a last window shorter than
    ``every`` is left out, and a video shorter than ``every`` is one window.
    """
    duration, fps, step = Fraction(duration), Fraction(fps), exact(every)
    _check(duration, fps, 1)
    if step <= 0:
        raise ConfigError(f"every must be > 0 seconds, got {every}")
    if sampling.rule == "spread":
        count = max(math.floor(duration / step), 1)
        window = min(step, duration)
        n = sampling.frames_per_clip
        for k in range(count):
            yield [k * step + (2 * j + 1) * window / (2 * n) for j in range(n)]
        return
    slack = duration - clip_span(sampling, fps)
    count = math.floor(slack / step) + 1 if slack >= 0 else 1
    for k in range(count):
        yield _clip_times(k * step, fps, sampling)


def _clip_times(start: Fraction, fps: Fraction, sampling: ClipSampling) -> list[Fraction]:
    """Snap the start to a frame boundary, then sample the middle of each chosen source frame:
    every ``frame_stride``-th one (``stride``), or the one on screen every ``1 / sample_fps`` s
    (``fps``: frame ``floor(j * fps / sample_fps)`` after the first)."""
    first = int(start * fps)
    n = sampling.frames_per_clip
    if sampling.rule == "fps":
        step = fps / exact(sampling.sample_fps)
        offsets = [math.floor(j * step) for j in range(n)]
    else:
        offsets = [j * sampling.frame_stride for j in range(n)]
    return [(first + k + Fraction(1, 2)) / fps for k in offsets]


def random_clip(
    duration: Fraction, fps: Fraction, sampling: ClipSampling, rng: random.Random
) -> list[Fraction]:
    """One training clip at a random position (``fps``, ``stride``), or TSN segments with jitter (``spread``)."""
    duration, fps = Fraction(duration), Fraction(fps)
    _check(duration, fps, 1)
    if sampling.rule == "spread":
        return segment_times(duration, sampling.frames_per_clip, rng)
    span = clip_span(sampling, fps)
    slack = max(duration - span, Fraction(0))
    start = slack * Fraction(rng.random())
    return _clip_times(start, fps, sampling)


def segment_times(duration: Fraction, num_segments: int, rng: random.Random | None) -> list[Fraction]:
    """TSN sampling: one instant per equal segment, jittered uniformly inside it when ``rng`` is given.

    Without ``rng`` the instant is the segment's centre (the deterministic evaluation variant).
    """
    duration = Fraction(duration)
    if num_segments < 1:
        raise ConfigError(f"num_segments must be >= 1, got {num_segments}")
    seg = duration / num_segments
    if rng is None:
        return [seg * k + seg / 2 for k in range(num_segments)]
    return [seg * k + seg * Fraction(rng.random()) for k in range(num_segments)]
