from fractions import Fraction as F
from random import Random

import pytest

from actionrec.data.sampling import ClipSampling, random_clip, segment_times, uniform_clips
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
]


@pytest.mark.parametrize("duration,fps,clips,sampling,expected", CASES)
def test_uniform_clips_table(duration, fps, clips, sampling, expected):
    times = uniform_clips(duration, fps, clips, sampling)
    assert [[int(t * fps) for t in clip] for clip in times] == expected
    assert all(isinstance(t, F) for clip in times for t in clip)


def test_instants_sit_mid_frame():
    (clip,) = uniform_clips(F(10), F(25), 1, ClipSampling(8, "stride", 1))
    assert all((t * 25) % 1 == F(1, 2) for t in clip)


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
                                          ({"frame_stride": 0}, "frame_stride")])
def test_bad_sampling_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ClipSampling(**kwargs)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="num_clips"):
        uniform_clips(F(1), F(25), 0, ClipSampling())
    with pytest.raises(ConfigError, match="fps"):
        uniform_clips(F(1), F(0), 1, ClipSampling())
