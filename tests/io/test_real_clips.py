"""Real clips from ../shared/videos (skipped when absent): exact frames against a full decode."""

from __future__ import annotations

import random

import av
import numpy as np
import pytest

from actionrec.io.video import VideoReader


def full_decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


@pytest.mark.parametrize("name", ["kinetics_arm_wrestling.mp4", "test_h264_340x256.mp4", "test_mpeg4_with_audio.avi"])
def test_reader_matches_full_decode(shared_videos, name):
    path = shared_videos / name
    frames = full_decode(path)
    rng = random.Random(name)
    with VideoReader(path) as reader:
        fps = reader.fps
        assert reader.info().num_frames == len(frames)
        times = sorted(rng.uniform(0, float(reader.duration)) for _ in range(16))
        read = reader.read(times)
    for t, got in zip(times, read.frames_thwc, strict=True):
        assert np.array_equal(got, frames[min(int(t * fps), len(frames) - 1)])
    assert read.stats.frames_decoded <= len(frames)
