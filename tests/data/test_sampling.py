from fractions import Fraction as F
from random import Random

import pytest

from actionrec.data.sampling import ClipSampling, dense_clips, random_clip, segment_times, uniform_clips
from actionrec.errors import ConfigError

# (duration s, fps, clips, sampling, expected frame indices per clip: floor(t * fps))
CASES = [
    # 4 frames, stride 2, one clip, centred in a 10 s video at 10 fps: span 0.8 s, slack 9.2 s -> start 4.6 s
    (F(10), F(10), 1, ClipSampling(4, "stride", 2), [[46, 48, 50, 52]]),
    # two clips: starts at slack/4 and 3 slack/4
    (F(10), F(10), 2, ClipSampling(4, "stride", 2), [[23, 25, 27, 29], [69, 71, 73, 75]]),
    # video shorter than the clip: starts at 0 and runs past the end (the reader repeats the last frame)
    (F(1, 2), F(10), 1, ClipSampling(4, "stride", 2), [[0, 2, 4, 6]]),
    # stride 1, exact fit: the clip covers the whole video
    (F(4, 10), F(10), 1, ClipSampling(4, "stride", 1), [[0, 1, 2, 3]]),
    # spread: 4 frames over each half of a 8 s video at 25 fps
    (F(8), F(25), 2, ClipSampling(4, "spread"), [[12, 37, 62, 87], [112, 137, 162, 187]]),
    # NTSC rate stays exact
    (F(10), F(30000, 1001), 1, ClipSampling(3, "stride", 1), [[148, 149, 150]]),
    # fps rule: 4 frames at 15/s from 30 fps = every 2nd frame; span 4/15 s, slack 10 - 4/15 -> start 4.8667 s
    (F(10), F(30), 1, ClipSampling(4, "fps", sample_fps=15), [[146, 148, 150, 152]]),
    # the same rule on a 60 fps source: every 4th frame, the same seconds
    (F(10), F(60), 1, ClipSampling(4, "fps", sample_fps=15), [[292, 296, 300, 304]]),
    # a source slower than the sampling rate repeats frames (8 fps sampled at 16/s)
    (F(4), F(8), 1, ClipSampling(4, "fps", sample_fps=16), [[15, 15, 16, 16]]),
    # 25 fps at 10/s: span 0.4 s, start 0.8 s = frame 20, then steps of 2.5 frames, floored
    (F(2), F(25), 1, ClipSampling(4, "fps", sample_fps=10), [[20, 22, 25, 27]]),
    # 7.5/s (MViT's published rate) read exactly, from a 30 fps video: start 4.8 s, every 4th frame
    (F(10), F(30), 1, ClipSampling(3, "fps", sample_fps=7.5), [[144, 148, 152]]),
]


@pytest.mark.parametrize("duration,fps,clips,sampling,expected", CASES)
def test_uniform_clips_table(duration, fps, clips, sampling, expected):
    times = uniform_clips(duration, fps, clips, sampling)
    assert [[int(t * fps) for t in clip] for clip in times] == expected
    assert all(isinstance(t, F) for clip in times for t in clip)


def test_instants_sit_mid_frame():
    (clip,) = uniform_clips(F(10), F(25), 1, ClipSampling(8, "stride", 1))
    assert all((t * 25) % 1 == F(1, 2) for t in clip)


@pytest.mark.parametrize("source_fps", [F(24), F(25), F(30000, 1001), F(30), F(50), F(60)])
def test_fps_rule_sees_the_same_window_whatever_the_source_rate(source_fps):
    """Bug: a stride counted in source frames made the window depend on the source rate (2 s of
    16 frames at 16 fps, 0.53 s at 60 fps). In time, every source rate gives the same seconds."""
    sampling = ClipSampling(16, "fps", sample_fps=8)
    (clip,) = uniform_clips(F(10), source_fps, 1, sampling)
    assert abs(clip[-1] - clip[0] - F(15, 8)) <= 1 / source_fps  # 15 steps of 1/8 s, within one source frame
    assert abs(clip[0] - 4) <= 1 / source_fps  # the 2 s window centred in the 10 s video starts at 4 s


def test_random_clip_stays_inside_and_is_reproducible():
    s = ClipSampling(8, "stride", 2)
    a = [random_clip(F(10), F(25), s, Random(k)) for k in range(20)]
    b = [random_clip(F(10), F(25), s, Random(k)) for k in range(20)]
    assert a == b
    assert all(0 <= t < 10 for clip in a for t in clip)
    assert len({clip[0] for clip in a}) > 10  # positions actually vary


def test_segments_jitter_within_their_segment():
    times = segment_times(F(8), 4, Random(3))
    for k, t in enumerate(times):
        assert 2 * k <= t < 2 * (k + 1)
    assert segment_times(F(8), 4, None) == [1, 3, 5, 7]


@pytest.mark.parametrize("kwargs,field", [({"frames_per_clip": 0}, "frames_per_clip"), ({"rule": "x"}, "rule"),
                                          ({"frame_stride": 0}, "frame_stride"), ({"sample_fps": 0}, "sample_fps"),
                                          ({"sample_fps": float("nan")}, "sample_fps"),
                                          ({"sample_fps": None}, "sample_fps")])
def test_bad_sampling_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ClipSampling(**kwargs)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="num_clips"):
        uniform_clips(F(1), F(25), 0, ClipSampling())
    with pytest.raises(ConfigError, match="fps"):
        uniform_clips(F(1), F(0), 1, ClipSampling())


# (duration s, fps, every s, sampling, number of clips, frame indices of the first clips, of the last clip)
DENSE_CASES = [
    # span 0.8 s in 10 s: clips start every second while they fit (slack 9.2 s -> 10 clips)
    (F(10), F(10), 1, ClipSampling(4, "stride", 2), 10, [[0, 2, 4, 6], [10, 12, 14, 16]], [90, 92, 94, 96]),
    # overlapping clips: 4 frames at 15/s from 30 fps (0.27 s) every 0.5 s of a 2 s video
    (F(2), F(30), 0.5, ClipSampling(4, "fps", sample_fps=15), 4, [[0, 2, 4, 6], [15, 17, 19, 21]],
     [45, 47, 49, 51]),
    # a video shorter than one clip: one clip from 0 (the reader repeats the last frame)
    (F(1, 2), F(10), 1, ClipSampling(4, "stride", 2), 1, [[0, 2, 4, 6]], [0, 2, 4, 6]),
    # NTSC stays exact: clip k starts on frame floor(k * 30000 / 1001)
    (F(3), F(30000, 1001), 1, ClipSampling(3, "stride", 1), 3, [[0, 1, 2], [29, 30, 31]], [59, 60, 61]),
    # a step of 2.5 frames (0.1 s at 25 fps): starts floored to frames 0, 2, 5, 7, ...
    (F(1), F(25), 0.1, ClipSampling(2, "stride", 1), 10, [[0, 1], [2, 3], [5, 6], [7, 8]], [22, 23]),
    # 0.1 read as exactly 1/10: the 5994th clip of a 10-minute video still starts at 599.3 s
    (F(600), F(25), 0.1, ClipSampling(16, "stride", 1), 5994, [[i for i in range(16)]],
     [14982 + i for i in range(16)]),
    # spread: each clip spreads its frames over its own 2 s window
    (F(8), F(25), 2, ClipSampling(4, "spread"), 4, [[6, 18, 31, 43], [56, 68, 81, 93]], [156, 168, 181, 193]),
    # spread on a video shorter than the window: one clip over the whole video
    (F(3, 2), F(25), 2, ClipSampling(4, "spread"), 1, [[4, 14, 23, 32]], [4, 14, 23, 32]),
]


@pytest.mark.parametrize("duration,fps,every,sampling,count,first,last", DENSE_CASES)
def test_dense_clips_table(duration, fps, every, sampling, count, first, last):
    clips = list(dense_clips(duration, fps, every, sampling))
    frames = [[int(t * fps) for t in clip] for clip in clips]
    assert (len(frames), frames[: len(first)], frames[-1]) == (count, first, last)
    assert all(isinstance(t, F) for clip in clips for t in clip)


@pytest.mark.parametrize("every", [0, -1])
def test_dense_clips_refuse_a_step_that_is_not_positive(every):
    with pytest.raises(ConfigError, match="every"):
        next(dense_clips(F(10), F(25), every, ClipSampling()))
