"""The reader returns exactly the frame on screen at each instant, decoding as little as possible."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from conftest import VFR_PTS_MS
from videos import frame_index

import actionrec
from actionrec.errors import EmptyVideoError, NotAVideoError, NoVideoStreamError
from actionrec.io import video
from actionrec.io.video import VideoReader, probe, read_frames


@pytest.fixture(autouse=True, params=["packets", "table"])
def index_from(request, monkeypatch):
    """Every behaviour below holds whether the index came from the packets or from an MP4's table."""
    monkeypatch.setattr(video, "_TABLE_MIN_FRAMES", 2 if request.param == "table" else 10**12)

# (instants in seconds, expected frame indices) for 100 frames at 25 fps
CONSTANT_RATE = [
    ([0.0], [0]),
    ([-3.0], [0]),  # before the start: first frame
    ([0.039, 0.04, 0.041], [0, 1, 1]),  # the frame on screen: last one whose time is <= t
    ([3.99, 4.0, 100.0], [99, 99, 99]),  # past the end: last frame
    ([2.0, 0.5, 1.0], [50, 12, 25]),  # any order; answers keep the request's order
    ([1.0, 1.0, 1.0], [25, 25, 25]),
    ([i * 0.24 + 0.02 for i in range(16)], [i * 6 for i in range(16)]),
]


@pytest.mark.parametrize("kind", ["mp4", "mp4_one_key", "avi", "mkv"])
@pytest.mark.parametrize("times,expected", CONSTANT_RATE)
def test_exact_frames_every_container(media, kind, times, expected):
    frames = read_frames(media[kind], times)
    assert frames.dtype == np.uint8 and frames.shape[1:] == (32, 96, 3)
    assert [frame_index(f) for f in frames] == expected


@pytest.mark.parametrize("kind", ["mp4", "mp4_one_key", "avi", "mkv"])
def test_every_frame_in_one_pass_matches_sequential_decode(media, kind):
    times = [Fraction(2 * i + 1, 50) for i in range(100)]
    with VideoReader(media[kind]) as reader:
        read = reader.read(times)
    assert [frame_index(f) for f in read.frames_thwc] == list(range(100))
    assert read.stats.frames_decoded <= 100  # never decodes a frame twice


def test_variable_frame_rate_uses_timestamps(media):
    starts = [ms / 1000 for ms in VFR_PTS_MS]
    times = starts + [s + 0.005 for s in starts] + [0.5, 0.9, 1.4, 10.0]
    expected = list(range(12)) + list(range(12)) + [5, 7, 10, 11]
    assert [frame_index(f) for f in read_frames(media["vfr"], times)] == expected


def test_short_video_repeats_last_frame(media):
    frames = read_frames(media["short"], [i / 10 for i in range(8)])
    assert [frame_index(f) for f in frames] == [0, 2, 4, 4, 4, 4, 4, 4]
    assert [frame_index(f) for f in read_frames(media["single"], [0, 1, 2])] == [0, 0, 0]


def test_long_gop_is_decoded_once_not_per_target(media):
    # One keyframe for 100 frames: seeking per target would decode the GOP 16 times.
    times = [i * 0.25 + 0.01 for i in range(16)]
    with VideoReader(media["mp4_one_key"]) as reader:
        read = reader.read(times)
    assert [frame_index(f) for f in read.frames_thwc] == [int(t * 25) for t in times]
    assert read.stats.frames_decoded <= 100
    assert read.stats.seeks <= 1


def test_sparse_targets_seek_instead_of_decoding_everything(media):
    with VideoReader(media["mp4"]) as reader:  # keyframe every 12 frames
        read = reader.read([0.5, 2.0, 3.5])
    assert [frame_index(f) for f in read.frames_thwc] == [12, 50, 87]
    assert read.stats.frames_decoded <= 3 * 12 + 3
    assert read.stats.seeks >= 2


def test_resize_inside_decoder(media):
    frames = read_frames(media["mp4"], [1.0], short_side=16)
    assert frames.shape == (1, 16, 48, 3)
    assert frame_index(frames[0]) == 25


def test_each_read_reports_its_own_work(media):
    """Bug: ``FrameRead.stats`` was the reader's running total, not the request's."""
    with VideoReader(media["mp4_one_key"]) as reader:
        first = reader.read([0.5])
        second = reader.read([3.5])
        assert first.stats.frames_needed == second.stats.frames_needed == 1
        assert second.stats.frames_decoded < reader.stats.frames_decoded
        assert first.stats.frames_decoded + second.stats.frames_decoded == reader.stats.frames_decoded


def test_probe_and_info(media):
    info = actionrec.probe(media["avi"])
    assert (info.width, info.height, info.num_frames, info.codec, info.container) == (96, 32, 100, "mpeg4", "avi")
    assert info.fps == 25 and info.duration_s == pytest.approx(4.0, abs=0.05)
    assert probe(media["audio_only"].parent / "gop12.mp4").has_audio is False


def test_probe_works_on_file_objects(media):
    with open(media["mp4"], "rb") as f:
        assert probe(f).num_frames == 100
    with open(media["mp4"], "rb") as f, VideoReader(f) as reader:
        assert frame_index(reader.read([2.0]).frames_thwc[0]) == 50


@pytest.mark.parametrize(
    "kind,error,words",
    [
        ("empty", EmptyVideoError, "empty"),
        ("text", NotAVideoError, "not a video"),
        ("png", NotAVideoError, "video"),
        ("truncated_no_moov", NotAVideoError, "damaged"),
        ("audio_only", NoVideoStreamError, "no video stream"),
    ],
)
def test_bad_inputs_raise_typed_errors(media, kind, error, words):
    with pytest.raises(error) as info:
        read_frames(media[kind], [0.0])
    assert words in str(info.value)
    assert isinstance(info.value, actionrec.ActionRecError)
    assert info.value.reason  # short phrase for the predictions table


def test_truncated_file_yields_what_decodes_and_says_so(media):
    with VideoReader(media["truncated_faststart"]) as reader:
        assert reader.partial_reason and "truncated" in reader.partial_reason
        readable = reader.info().num_frames
        assert 0 < readable < 100
        read = reader.read([0.0, 1.0, 3.9])
    idx = [frame_index(f) for f in read.frames_thwc]
    assert idx[0] == 0
    assert readable - 3 <= idx[1] <= min(25, readable - 1)  # the last frame that decodes
    assert idx[2] == idx[1]
    assert read.partial_reason


def test_decode_all_matches_reader(media):
    with VideoReader(media["avi"]) as reader:
        cached = reader.decode_all()
    assert [frame_index(f) for f in cached.read([0.0, 1.0, 3.99, 9.0])] == [0, 25, 99, 99]
    assert cached.duration == 4




@pytest.mark.parametrize("kind", ["mp4", "mp4_one_key", "mkv"])
def test_skipping_unreferenced_frames_changes_nothing_returned(media, kind):
    times = [i * 0.37 + 0.01 for i in range(10)]
    with VideoReader(media[kind]) as reader:
        reader.skip_nonref = False
        full = reader.read(times)
    with VideoReader(media[kind]) as reader:
        skipped = reader.read(times)
    assert np.array_equal(full.frames_thwc, skipped.frames_thwc)
    assert [frame_index(f) for f in skipped.frames_thwc] == [int(Fraction(t).limit_denominator(10**6) * 25)
                                                             for t in times]
    if kind == "mp4_one_key":  # B-frames nobody refers to are never decoded
        assert skipped.stats.frames_decoded < full.stats.frames_decoded


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_frames_come_out_as_a_player_shows_them(tmp_path, degrees):
    """Reported: a phone video with a rotation tag was reported in its stored size and its frames came
    out sideways. The display matrix is applied to frames and sizes."""
    import av

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(degrees)
        stored = np.zeros((32, 64, 3), np.uint8)
        stored[:, :16] = 255  # a white bar on the stored frame's left
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = actionrec.probe(path)
    turned = degrees % 180 != 0
    assert (info.width, info.height, info.rotation) == ((32, 64, degrees) if turned else (64, 32, degrees))
    frame = actionrec.read_frames(path, [0.5])[0]
    white = frame.mean(axis=2) > 127
    expected = np.rot90(stored.mean(axis=2) > 127, k=degrees // 90)
    assert frame.shape[:2] == expected.shape and (white == expected).mean() > 0.95
    with VideoReader(path) as reader:
        assert (reader.info().width, reader.info().height) == (info.width, info.height)
