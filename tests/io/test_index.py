"""The index from an MP4's own sample table is the index from its packets, or is not used."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from videos import frame_index, write_indexed

from actionrec.io import video
from actionrec.io.video import VideoReader


@pytest.fixture
def table_always(monkeypatch):
    """Read the table for any length (by default only long videos are worth it)."""
    monkeypatch.setattr(video, "_TABLE_MIN_FRAMES", 2)


@pytest.fixture(scope="module")
def vfr_bframes(tmp_path_factory):
    """Variable frame rate with B-frames: x264's decode times are not presentation times minus a constant."""
    gaps = [40, 40, 20, 100, 33, 40, 67, 40, 20, 40]
    pts = [sum(gaps[j % len(gaps)] for j in range(i)) for i in range(60)]
    path = tmp_path_factory.mktemp("vfr") / "vfr_bframes.mp4"
    return write_indexed(path, 60, gop=12, bframes=2, pts=pts, time_base=Fraction(1, 1000)), pts


def _both(path):
    with VideoReader(path) as reader:
        table = (list(reader.index()), list(reader._key_positions), reader.index_source)
        packets = (list(reader.exact_index()), list(reader._key_positions), reader.index_source)
    return table, packets


@pytest.mark.parametrize("kind", ["mp4", "mp4_one_key", "vfr", "short"])
def test_the_table_gives_the_packets_index(media, table_always, kind):
    table, packets = _both(media[kind])
    assert table[2] == "container" and packets[2] == "packets"
    assert table[:2] == packets[:2]


def test_variable_rate_with_b_frames(vfr_bframes, table_always):
    path, pts_ms = vfr_bframes
    table, packets = _both(path)
    assert table[2] == "container" and table[:2] == packets[:2]
    with VideoReader(path) as reader:
        tb = reader.time_base
        assert [Fraction(g - table[0][0]) * tb for g in table[0]] == [Fraction(p, 1000) for p in pts_ms]
        read = reader.read([Fraction(p, 1000) for p in pts_ms[::7]])
        assert reader.index_source == "container"  # every decoded frame was where the table said
    assert [frame_index(f) for f in read.frames_thwc] == list(range(0, 60, 7))


@pytest.mark.parametrize("kind", ["mkv", "avi", "truncated_faststart"])
def test_other_containers_and_truncated_files_are_indexed_from_packets(media, table_always, kind):
    with VideoReader(media[kind]) as reader:
        reader.index()
        assert reader.index_source == "packets"


def test_short_videos_are_indexed_from_packets_by_default(media):
    with VideoReader(media["mp4"]) as reader:  # 100 frames: demuxing them is cheaper than two seeks
        reader.index()
        assert reader.index_source == "packets"


def _remux_with_a_late_gop(src, dst, gop: int, late_ticks: int) -> None:
    """Copy the packets, showing the frames of GOP ``gop`` ``late_ticks`` later (a valid file whose
    table no rule predicts there, while the first and last GOP still agree)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        keys = -1
        for packet in inp.demux(ins):
            if not packet.size:
                continue
            keys += bool(packet.is_keyframe)
            if keys == gop:
                packet.pts += late_ticks
            packet.stream = outs
            out.mux(packet)


def test_a_table_that_is_wrong_mid_file_is_caught_by_the_read(media, table_always, tmp_path):
    path = tmp_path / "late_gop.mp4"
    _remux_with_a_late_gop(media["mp4"], path, gop=4, late_ticks=1)  # frames 48-59 at 25 fps
    with VideoReader(path) as reader:
        reader.index()
        assert reader.index_source == "container"
        read = reader.read([2.01, 2.21])
        assert reader.index_source == "packets" and reader.stats.fallbacks == 1 and not read.partial_reason
    assert [frame_index(f) for f in read.frames_thwc] == [50, 55]
    with VideoReader(path) as reader:
        reader.exact_index()
        assert [frame_index(f) for f in reader.read([2.01, 2.21]).frames_thwc] == [50, 55]


def test_the_packet_index_can_be_forced(media, table_always, monkeypatch):
    monkeypatch.setenv(video.INDEX_ENV, "packets")
    with VideoReader(media["mp4"]) as reader:
        reader.index()
        assert reader.index_source == "packets"
