"""Dense reading: many overlapping clips from one forward pass, each frame decoded at most once."""

from __future__ import annotations

from fractions import Fraction

import pytest
from conftest import VFR_PTS_MS
from videos import frame_index

from actionrec.data.sampling import ClipSampling, dense_clips
from actionrec.io.video import VideoReader


def _indices(read) -> list[int]:
    return [frame_index(f) for f in read.frames_thwc]


@pytest.mark.parametrize("kind", ["mp4", "mp4_one_key", "avi", "mkv"])
def test_overlapping_clips_decode_and_convert_each_frame_once(media, kind):
    """8-frame clips every 4 frames of a 100-frame video: every frame is in two clips, and is
    decoded once and converted once; the clips are exactly the frames asked for."""
    clips = list(dense_clips(Fraction(4), Fraction(25), Fraction(4, 25), ClipSampling(8, "stride", 1)))
    seen: list[float] = []
    held = 0
    with VideoReader(media[kind]) as reader:
        reads = []
        for read in reader.read_clips(clips, on_frame=lambda t, _: seen.append(t)):
            reads.append(_indices(read))
            held = max(held, reader.frames_held)
        stats, partial = reader.stats, reader.stream_partial
    assert reads == [list(range(k, k + 8)) for k in range(0, 93, 4)]
    assert (stats.frames_decoded, stats.frames_converted) == (100, 100)
    assert stats.seeks <= 1  # to the first keyframe; never back
    assert seen == sorted(set(seen)) and len(seen) == 100  # each frame shown to on_frame once, in order
    assert held <= 8  # one clip's frames, not the video's
    assert partial is None


@pytest.mark.parametrize("kind", ["mp4", "mp4_one_key", "avi", "mkv", "vfr"])
def test_each_clip_is_what_a_separate_read_returns(media, kind):
    """Sampled clips that overlap (2 s of 8 frames every 0.5 s): the one-pass answers equal
    per-clip reads, and the pass never decodes more frames than the video has."""
    sampling = ClipSampling(6, "fps", sample_fps=10)
    with VideoReader(media[kind]) as reader:
        clips = list(dense_clips(reader.duration, reader.fps, 0.25, sampling))
        total = reader.info().num_frames
        dense = [_indices(r) for r in reader.read_clips(clips)]
        decoded = reader.stats.frames_decoded
    singles = []
    for clip in clips:
        with VideoReader(media[kind]) as reader:
            singles.append(_indices(reader.read(clip)))
    assert dense == singles and len(dense) == len(clips) > 1
    assert decoded <= total


def test_sparse_dense_clips_seek_past_keyframes(media):
    """Clips 2 s apart in a video with a keyframe every 12 frames: the gaps are skipped, not decoded."""
    clips = list(dense_clips(Fraction(4), Fraction(25), 2, ClipSampling(2, "stride", 1)))
    with VideoReader(media["mp4"]) as reader:
        assert [_indices(r) for r in reader.read_clips(clips)] == [[0, 1], [50, 51]]
        assert reader.stats.frames_decoded < 30 and reader.stats.seeks >= 1


def test_truncated_file_streams_what_decodes_and_says_so(media):
    with VideoReader(media["truncated_faststart"]) as reader:
        readable = reader.info().num_frames
        clips = list(dense_clips(reader.duration, reader.fps, 0.5, ClipSampling(4, "stride", 1)))
        reads = [_indices(r) for r in reader.read_clips(clips)]
        partial = reader.stream_partial
    assert 0 < readable < 100  # the clips cover what is readable, not the 4 s the header claims
    starts = [int(Fraction(k, 2) * 25) for k in range(len(clips))]  # every 0.5 s at 25 fps
    assert reads == [[s, s + 1, s + 2, s + 3] for s in starts] and len(reads) >= 1
    assert partial and "truncated" in partial


def test_variable_frame_rate_clips_follow_timestamps(media):
    with VideoReader(media["vfr"]) as reader:
        reads = [_indices(r) for r in reader.read_clips([[0.0, 0.2], [0.1, 0.6], [0.61, 1.04]])]
    assert reads == [[0, 3], [2, 6], [6, 9]]
    assert VFR_PTS_MS[9] == 1033
