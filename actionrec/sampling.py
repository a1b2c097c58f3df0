"""Which instants of a video a model sees: pure arithmetic on exact fractions, no decoding.

Times are seconds from the first frame (the first frame is at 0). A sampled instant is then
turned into a frame by the reader's rule "the frame on screen at t" (the last frame whose
presentation time is <= t). Instants are placed in the middle of a frame's display interval,
so rounding in container timestamps can never tip a sample onto a neighbouring frame.
Instants past the end are allowed on purpose: the reader answers them with the last frame,
which is how a video shorter than a clip repeats its last frame instead of failing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from actionrec.errors import ConfigError

SAMPLING_RULES = ("stride", "spread")


@dataclass(frozen=True)
class ClipSampling:
    """How one clip is laid out in time.

    ``stride``: ``frames_per_clip`` frames, ``frame_stride`` source frames apart (the clip lasts
    ``frames_per_clip * frame_stride / fps`` seconds). ``spread``: the frames are spread evenly
    over the clip's window (a ``1/num_clips`` share of the video), whatever its length.
    """

    frames_per_clip: int = 16
    rule: str = "stride"
    frame_stride: int = 2

    def __post_init__(self) -> None:
        if self.frames_per_clip < 1:
            raise ConfigError(f"frames_per_clip must be >= 1, got {self.frames_per_clip}")
        if self.rule not in SAMPLING_RULES:
            raise ConfigError(f"rule must be one of {SAMPLING_RULES}, got {self.rule!r}")
        if self.frame_stride < 1:
            raise ConfigError(f"frame_stride must be >= 1, got {self.frame_stride}")


def _check(duration: Fraction, fps: Fraction, num_clips: int) -> None:
    if duration < 0:
        raise ConfigError(f"duration must be >= 0, got {duration}")
    if fps <= 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    if num_clips < 1:
        raise ConfigError(f"num_clips must be >= 1, got {num_clips}")


def clip_span(sampling: ClipSampling, fps: Fraction) -> Fraction:
    """Seconds covered by one ``stride`` clip."""
    return Fraction(sampling.frames_per_clip * sampling.frame_stride) / Fraction(fps)


def uniform_clips(
    duration: Fraction, fps: Fraction, num_clips: int, sampling: ClipSampling
) -> list[list[Fraction]]:
    """``num_clips`` clips evenly spread over the video, for inference and evaluation.

    With the ``stride`` rule, clip ``i`` is centred in the ``i``-th of ``num_clips`` equal
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
        clips.append(_stride_times(start, fps, sampling))
    return clips


def _stride_times(start: Fraction, fps: Fraction, sampling: ClipSampling) -> list[Fraction]:
    # Snap the start to a frame boundary, then sample mid-interval of every stride-th frame.
    first = Fraction(int(start * fps))
    return [(first + j * sampling.frame_stride + Fraction(1, 2)) / fps for j in range(sampling.frames_per_clip)]


def random_clip(
    duration: Fraction, fps: Fraction, sampling: ClipSampling, rng: random.Random
) -> list[Fraction]:
    """One training clip at a random position (``stride``), or TSN segments with jitter (``spread``)."""
    duration, fps = Fraction(duration), Fraction(fps)
    _check(duration, fps, 1)
    if sampling.rule == "spread":
        return segment_times(duration, sampling.frames_per_clip, rng)
    span = clip_span(sampling, fps)
    slack = max(duration - span, Fraction(0))
    start = slack * Fraction(rng.random())
    return _stride_times(start, fps, sampling)


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
