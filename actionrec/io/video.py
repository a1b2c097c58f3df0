"""The one module that touches PyAV: probing containers and reading exactly the frames asked for.

Why it is built this way:
- Decoding a whole video to pick 16 frames is the trap (README, Performance, has the cost).
  We read the packet index first (timestamps and keyframe flags, no decoding), snap every
  requested instant to a frame of that index, then decode forward and seek only when the next
  wanted frame lies beyond a keyframe we have not reached yet. Reading only moves forward, so no
  group of pictures (GOP) is ever decoded twice for one request. A dense pass (``read_clips``,
  thousands of overlapping clips) is one such forward walk: each frame is decoded at most once and
  shared by every clip that holds it, and only the frames of clips not yet returned are kept.
- Only frames that are kept are converted to RGB and resized, inside PyAV's reformat.
- A seek must land on the keyframe asked for; when it lands late we back off to an earlier
  keyframe, then to a sequential read. AVI stores decode order only and its reconstructed
  timestamps are off by a frame for packed B-frames, so AVI is read sequentially and frames are
  timed by output order, which the decoder guarantees is presentation order.
- A file that decodes only in part gives what it could, and says so in ``partial_reason``.
"""

from __future__ import annotations

import bisect
import heapq
import io
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import numpy as np

from actionrec.errors import (
    CorruptVideoError,
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    VideoError,
)
from actionrec.io.atomic import atomic_path

Source = str | os.PathLike | IO[bytes]

# Demuxers whose timestamps do not give presentation order reliably: read them in output order.
_COUNT_ORDER_FORMATS = {"avi"}
_CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".avi": "avi", ".webm": "webm",
                      ".mov": "mov"}
# MP4 sample-table flags (libavformat's AVINDEX_KEYFRAME, AVINDEX_DISCARD_FRAME), and the frame count from
# which the table is read. It is cheaper at any length (64x96 H.264 at 30 fps, 2 cores: 0.5 ms against
# 1.2 ms for 300 frames, 1.2 against 4.0 for 1,000, 5 against 25 for 4,000; 22 against 140-175 ms for a
# 10-minute 360p video), but under 1,000 frames the saving is a few milliseconds, so short clips keep
# the plain packet pass.
_KEYFRAME, _DISCARD = 0x1, 0x2
_TABLE_MIN_FRAMES = 1000
INDEX_ENV = "ACTIONREC_VIDEO_INDEX"  # "packets": never read the sample table (benchmarks; a way back)
# At and above this many pixels per frame, let FFmpeg decode with frame + slice threads.
_THREADED_PIXELS = 1280 * 720


@dataclass(frozen=True)
class VideoInfo:
    """What the container says, plus what the packet index found (when it was read). ``width`` and
    ``height`` are as a player shows the video: ``rotation`` (degrees counter-clockwise, from the
    display matrix a phone writes) already applied."""

    duration_s: float
    fps: float
    num_frames: int
    width: int
    height: int
    codec: str
    has_audio: bool
    container: str
    bytes: int | None = None
    rotation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DecodeStats:
    """Counters a benchmark reads: how much work a request cost."""

    frames_needed: int = 0
    frames_decoded: int = 0
    frames_converted: int = 0
    seeks: int = 0
    fallbacks: int = 0

    def since(self, earlier: DecodeStats) -> DecodeStats:
        """The work done between ``earlier`` (a copy of these counters) and now."""
        return DecodeStats(**{k: v - getattr(earlier, k) for k, v in asdict(self).items()})


@dataclass
class FrameRead:
    """The answer to one request: ``frames_thwc`` uint8 RGB, one frame per requested instant, and
    ``stats``, the work this request cost (the reader's ``stats`` keep the running total)."""

    frames_thwc: np.ndarray
    frame_times_s: list[float]
    stats: DecodeStats = field(default_factory=DecodeStats)
    partial_reason: str | None = None


def _describe(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return getattr(source, "name", None) or "<stream>"


def _size_of(source: Source) -> int | None:
    if isinstance(source, str | os.PathLike):
        try:
            return os.path.getsize(source)
        except OSError:
            return None
    try:
        pos = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(pos)
        return int(end)
    except (OSError, AttributeError, ValueError):
        return None


def _open(source: Source) -> av.container.InputContainer:
    """Open a container, turning FFmpeg's failures into errors a person understands."""
    name = _describe(source)
    if isinstance(source, str | os.PathLike) and not Path(source).exists():
        raise VideoError("file not found", uri=name)
    size = _size_of(source)
    if size == 0:
        raise EmptyVideoError("file is empty (0 bytes)", uri=name)
    try:
        src = os.fspath(source) if isinstance(source, str | os.PathLike) else source
        container = av.open(src, mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as e:
        raise NotAVideoError("not a video file FFmpeg can read (unrecognised or damaged container)", uri=name) from e
    except (av.error.FFmpegError, OSError) as e:
        raise NotAVideoError(f"cannot open as a video: {e}", uri=name) from e
    if not container.streams.video:
        container.close()
        raise NoVideoStreamError("the file has no video stream (audio-only or data file)", uri=name)
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in {"image2", "image2pipe"}:
        container.close()
        raise NotAVideoError(f"this is a still image ({fmt.removesuffix('_pipe')}), not a video", uri=name)
    return container


def _fps_of(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(25)


def _video_info(container: av.container.InputContainer, source: Source, num_frames: int, duration_s: float,
                fps: Fraction, rotation: int) -> VideoInfo:
    """The one place a ``VideoInfo`` is built, from an open container and what was counted."""
    cc = container.streams.video[0].codec_context
    turned = rotation % 180 != 0
    return VideoInfo(
        duration_s=float(duration_s),
        fps=float(fps),
        num_frames=int(num_frames),
        width=cc.height if turned else cc.width,
        height=cc.width if turned else cc.height,
        codec=cc.name,
        has_audio=bool(container.streams.audio),
        container=container.format.name,
        bytes=_size_of(source),
        rotation=rotation,
    )


def _display_rotation(container: av.container.InputContainer) -> int:
    """Degrees counter-clockwise (0, 90, 180 or -90) that a player turns the stored frames, from the
    display matrix of the first frame (PyAV exposes it on frames only). The container is left at
    its start."""
    stream = container.streams.video[0]
    degrees = 0
    try:
        for frame in container.decode(stream):
            degrees = int(round((frame.rotation or 0) / 90.0)) * 90
            break
    except av.error.FFmpegError:
        pass
    container.seek(0, backward=True, any_frame=False)
    degrees %= 360
    return degrees - 360 if degrees > 180 else degrees


def upright(frame_hwc: np.ndarray, rotation: int) -> np.ndarray:
    """A frame as a player shows it: turned ``rotation`` degrees counter-clockwise."""
    return np.rot90(frame_hwc, k=rotation // 90) if rotation else frame_hwc


def probe(source: Source) -> VideoInfo:
    """Container facts without decoding a frame (frame count from the header, or by demuxing)."""
    container = _open(source)
    try:
        vs = container.streams.video[0]
        fps = _fps_of(vs)
        duration = 0.0
        if vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        frames = vs.frames or 0
        if frames <= 0:
            try:
                frames = sum(1 for p in container.demux(vs) if p.size)
            except av.error.FFmpegError:
                frames = int(round(duration * float(fps)))
        if duration <= 0 and frames:
            duration = frames / float(fps)
        return _video_info(container, source, frames, duration, fps, _display_rotation(container))
    finally:
        container.close()


def output_size(width: int, height: int, short_side: int | None, max_side: int | None = None) -> tuple[int, int]:
    """Frame size after scaling the shorter side to ``short_side`` (keeping aspect, even sizes not required)."""
    if short_side is None and max_side is None:
        return width, height
    scale = 1.0
    if short_side is not None:
        scale = short_side / min(width, height)
    if max_side is not None and max(width, height) * scale > max_side:
        scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def as_fraction(t: float | Fraction) -> Fraction:
    """Exact time; a float is read to the microsecond, so 0.21 means 21/100 s, not 0.2099999..."""
    if isinstance(t, Fraction | int):
        return Fraction(t)
    return Fraction(t).limit_denominator(1_000_000)


def snap_position(grid: Sequence[int], count_order: bool, fps: Fraction, time_base: Fraction, t: Fraction) -> int:
    """Index of the frame on screen at ``t`` s from the first frame (clamped to the first/last frame)."""
    t = Fraction(t)
    if count_order:
        pos = int(t * fps) if t > 0 else 0
    else:
        pos = bisect.bisect_right(grid, grid[0] + t / time_base) - 1
    return min(max(pos, 0), len(grid) - 1)


@dataclass(frozen=True)
class DecodedFrames:
    """All frames of a short video in memory, answering time requests exactly as the reader does."""

    frames_thwc: np.ndarray
    grid: list[int]
    count_order: bool
    fps: Fraction
    time_base: Fraction
    partial_reason: str | None = None

    @property
    def duration(self) -> Fraction:
        if self.count_order:
            return Fraction(len(self.grid)) / self.fps
        return (self.grid[-1] - self.grid[0]) * self.time_base + 1 / self.fps

    def read(self, timestamps_s: Sequence[float | Fraction]) -> np.ndarray:
        pos = [snap_position(self.grid, self.count_order, self.fps, self.time_base, as_fraction(t))
               for t in timestamps_s]
        return self.frames_thwc[pos]


class VideoReader:
    """Reads frames at given instants from one video, decoding as little as possible.

    Use as a context manager. ``index()`` learns the frame timestamps and keyframes without
    decoding (from an MP4's sample table, else by demuxing the packets once); ``read()`` may be
    called several times, each call moving only forward through the file.
    """

    def __init__(self, source: Source, *, threads: str | None = None) -> None:
        self.name = _describe(source)
        self._source = source
        self._bytes = _size_of(source)
        self._container = _open(source)
        self._stream = self._container.streams.video[0]
        self._threads = threads
        self._grid: list[int] | None = None  # presentation times of all frames, stream time base
        self._key_positions: list[int] = []  # index in _grid of each keyframe
        self.index_source: str | None = None  # "packets" (every packet demuxed) or "container" (its table)
        self._index_error: str | None = None
        self.count_order = self._container.format.name in _COUNT_ORDER_FORMATS
        self.stats = DecodeStats()
        self.damage: list[str] = []  # problems met while decoding (skipped packets, early end)
        self._wanted: _Wanted | None = None  # presentation times still to return (skip the rest)
        self.stream_error: str | None = None  # why the last read_clips pass stopped early
        self.frames_held = 0  # decoded frames read_clips holds for clips not yet returned
        self.skip_nonref = True
        self._rotation: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the index ----------------------------------------------------------------------------
    @property
    def time_base(self) -> Fraction:
        return Fraction(self._stream.time_base) if self._stream.time_base else Fraction(1, 90000)

    @property
    def fps(self) -> Fraction:
        return _fps_of(self._stream)

    def index(self) -> list[int]:
        """Presentation timestamps of every frame (stream time base), read without decoding: from the
        container's own sample table where it can be trusted (MP4/MOV, see ``_container_index``), else
        from every packet."""
        if self._grid is not None:
            return self._grid
        if not self.count_order and (table := self._container_index()) is not None:
            self._grid, self._key_positions = table
            self.index_source = "container"
            self._rewind()
            return self._grid
        return self._packet_index()

    def exact_index(self) -> list[int]:
        """The index from every packet's own timestamps (a pass that reads the whole video anyway
        costs nothing more for it, and a read that met a frame the table did not predict needs it)."""
        if self.index_source != "packets":
            self._grid, self.index_source = None, None
            self._rewind()
            return self._packet_index()
        return self.index()

    def _packet_index(self) -> list[int]:
        """The index from demuxing every packet: exact for any container, one pass over the file."""
        stamps: list[tuple[int, bool]] = []
        use_dts = self.count_order
        try:
            for packet in self._container.demux(self._stream):
                if not packet.size:
                    continue
                ts = packet.dts if use_dts else packet.pts
                if ts is None:
                    ts = packet.dts if packet.dts is not None else packet.pts
                if ts is None:
                    # No timestamps at all: time frames by their order.
                    use_dts = True
                    ts = len(stamps)
                stamps.append((int(ts), bool(packet.is_keyframe)))
        except av.error.FFmpegError as e:
            self._index_error = f"the file is damaged or truncated after {len(stamps)} frames ({e.strerror or e})"
        if not stamps:
            declared = self._stream.frames or 0
            reason = self._index_error or (f"the file is damaged: none of its {declared} frames could be read"
                                           if declared else "the video stream holds no frames")
            raise CorruptVideoError(reason, uri=self.name)
        if use_dts and not self.count_order:
            self.count_order = True
        stamps.sort()
        self._grid = [ts for ts, _ in stamps]
        self._key_positions = [i for i, (_, key) in enumerate(stamps) if key] or [0]
        self.index_source = "packets"
        self._rewind()
        return self._grid

    def _container_index(self) -> tuple[list[int], list[int]] | None:
        """Frame times and keyframe positions from an MP4/MOV sample table (``stream.index_entries``:
        every sample's decode time, size and keyframe flag, read when the file was opened), so a
        long video is indexed without reading its 18,000 packets; None when it cannot be trusted.

        The table holds decode times only. Presentation times follow from them by one of two rules
        encoders use: a shift by the reorder delay (the k-th smallest pts is the (k + delay)-th dts,
        as x264 writes them at any frame rate; the last ``delay`` times come from the last GOP's
        packets) or a constant offset (``pts = dts + c``). The rule is chosen, and checked
        exactly, on the packets of the first and last GOP; a table that disagrees, samples
        past the end of the file, discarded samples (edit lists), open GOPs or a count other than
        the declared one mean every packet is demuxed instead. ``read`` checks every decoded frame's
        time against the table and on any difference reindexes from the packets and reads again, so
        the GOPs in between are checked wherever a frame is decoded."""
        if not self._container.format.name.startswith("mov") or os.environ.get(INDEX_ENV) == "packets":
            return None
        n = self._stream.frames or 0
        if n < _TABLE_MIN_FRAMES:
            return None
        entries = self._stream.index_entries
        if len(entries) != n:
            return None
        dts: list[int] = []
        keys: list[int] = []
        end = 0
        for i, e in enumerate(entries):
            ts, flags, size = e.timestamp, e.flags, e.size
            if flags & _DISCARD or size <= 0 or (dts and ts <= dts[-1]):
                return None
            if flags & _KEYFRAME:
                keys.append(i)
            dts.append(ts)
            end = e.pos + size
        if self._bytes is None or end > self._bytes:
            return None  # a truncated file: its table promises samples that are not there
        if not keys or keys[0] != 0:
            return None
        bounds = [*keys, n]  # GOP g holds decode positions bounds[g] .. bounds[g + 1] - 1
        samples = sorted({0, len(keys) - 1})
        try:
            gops = {g: self._gop_pts(dts[bounds[g]], dts[bounds[g + 1]] if g + 1 < len(keys) else None,
                                     bounds[g + 1] - bounds[g]) for g in samples}
        except av.error.FFmpegError:
            return None
        finally:
            self._rewind()
        if any(p is None for p in gops.values()):
            return None
        first, last = gops[0], gops[len(keys) - 1]
        assert first is not None and last is not None
        delay = bisect.bisect_left(dts, first[0])
        shifted = dts[delay:] + last[len(last) - delay:] if delay <= len(last) else None
        offset = [d + first[0] - dts[0] for d in dts]
        for grid in (shifted, offset):
            if grid is not None and all(grid[bounds[g]:bounds[g + 1]] == pts for g, pts in gops.items()):
                return grid, keys
        return None

    def _gop_pts(self, start_dts: int, next_key_dts: int | None, count: int) -> list[int] | None:
        """The sorted presentation times of the ``count`` packets of one GOP (demuxed, not decoded),
        or None when they are not exactly those packets, keyframe first on screen (a closed GOP)."""
        self._container.seek(start_dts, stream=self._stream, backward=True, any_frame=False)
        pts: list[int] = []
        key_pts: int | None = None
        for packet in self._container.demux(self._stream):
            if not packet.size or packet.dts is None or packet.dts < start_dts:
                continue
            if next_key_dts is not None and packet.dts >= next_key_dts:
                break
            if packet.pts is None:
                return None
            if packet.dts == start_dts:
                key_pts = packet.pts
            pts.append(packet.pts)
            if next_key_dts is None and len(pts) > count:
                return None
        pts.sort()
        if len(pts) != count or key_pts is None or key_pts != pts[0]:
            return None
        return pts

    def info(self) -> VideoInfo:
        """Facts from the container, with frame count and duration from the index (what is readable)."""
        grid = self.index()
        return _video_info(self._container, self._source, len(grid), float(self.duration), self.fps, self.rotation)

    @property
    def rotation(self) -> int:
        """Degrees counter-clockwise a player turns the stored frames; ``read`` returns them turned."""
        if self._rotation is None:
            self._configure_threads()  # before the first decode opens the codec
            self._rotation = _display_rotation(self._container)
        return self._rotation

    @property
    def duration(self) -> Fraction:
        """Exact readable duration in seconds: from the first frame to the end of the last."""
        grid = self.index()
        if self.count_order:
            return Fraction(len(grid)) / self.fps
        return (grid[-1] - grid[0]) * self.time_base + 1 / self.fps

    @property
    def partial_reason(self) -> str | None:
        """Why only part of the file is readable, or None when the index found no damage."""
        self.index()
        if self._index_error:
            return self._index_error
        declared = self._stream.frames or 0
        if declared and len(self._grid or []) < declared:
            return (
                f"only {len(self._grid or [])} of {declared} frames could be read (the file is truncated or damaged)"
            )
        return None

    # -- reading ------------------------------------------------------------------------------
    def _rewind(self) -> None:
        self._container.seek(0, backward=True, any_frame=False)

    def _snap(self, t: Fraction) -> int:
        """Grid position of the frame on screen at ``t`` seconds from the first frame."""
        return snap_position(self.index(), self.count_order, self.fps, self.time_base, t)

    def decode_all(self, *, short_side: int | None = None) -> DecodedFrames:
        """Every frame, in order, for short videos that are read many times (training epochs)."""
        grid = self.exact_index()
        if self.count_order:
            times = [Fraction(2 * i + 1, 2) / self.fps for i in range(len(grid))]
        else:
            times = [(g - grid[0]) * self.time_base for g in grid]
        read = self.read(times, short_side=short_side)
        return DecodedFrames(read.frames_thwc, grid, self.count_order, self.fps, self.time_base, read.partial_reason)

    def _configure_threads(self) -> None:
        """Once, before the codec opens (FFmpeg refuses a change after that: a second read() failed)."""
        cc = self._stream.codec_context
        if cc.is_open:
            return
        mode = self._threads
        if mode is None:
            mode = "AUTO" if cc.width * cc.height >= _THREADED_PIXELS else "SLICE"
        try:
            cc.thread_type = mode
        except (ValueError, av.error.FFmpegError):  # pragma: no cover - codec without threads
            pass

    def _decoded_frames(self) -> Iterator[tuple[av.Packet, av.VideoFrame]]:
        """Decode from the current position; a damaged packet is skipped and remembered, as FFmpeg does.

        When ``self._wanted`` holds the presentation times still needed, packets of other frames are
        decoded with ``skip_frame=NONREF``: a frame no other frame refers to and nobody asked for is
        not decoded at all, and no frame that is returned can change because of it.
        """
        demux = self._container.demux(self._stream)
        cc = self._stream.codec_context
        skipping = False
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                self.damage.append(f"the file is damaged or cut short ({e.strerror or e})")
                return
            if self._wanted is not None:
                skip = packet.pts is not None and packet.pts not in self._wanted
                if skip != skipping:
                    cc.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self.damage.append(f"damaged data skipped ({e.strerror or e})")
                continue
            for frame in frames:
                yield packet, frame

    def _decode(self, seek_to: int | None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Frames in presentation order with their grid position, from a keyframe or the start."""
        grid = self.index()
        if seek_to is None:
            self._rewind()
        else:  # count order never seeks: it has no trustworthy timestamps to land on
            self._container.seek(seek_to, stream=self._stream, backward=True, any_frame=False)
            self.stats.seeks += 1
        for counted, (_, frame) in enumerate(self._decoded_frames()):
            self.stats.frames_decoded += 1
            if self.count_order:
                if counted >= len(grid):
                    return
                yield counted, frame
            elif frame.pts is not None:
                pos = max(bisect.bisect_right(grid, frame.pts) - 1, 0)
                if self.index_source == "container" and grid[pos] != frame.pts:
                    raise _TableMismatch(f"frame at pts {frame.pts} is not in the container's table")
                yield pos, frame

    def read(
        self,
        timestamps_s: Sequence[float | Fraction],
        *,
        short_side: int | None = None,
        max_side: int | None = None,
    ) -> FrameRead:
        """Frames on screen at each instant (seconds from the first frame), as uint8 RGB THWC."""
        if len(timestamps_s) == 0:
            raise ValueError("timestamps_s is empty")
        self.index()
        try:
            return self._read(timestamps_s, short_side, max_side)
        except _TableMismatch:  # the container's table was wrong somewhere: read again by the packets
            self.stats.fallbacks += 1
            self.exact_index()
            return self._read(timestamps_s, short_side, max_side)

    def _read(self, timestamps_s: Sequence[float | Fraction], short_side: int | None,
              max_side: int | None) -> FrameRead:
        before = replace(self.stats)
        wanted = [self._snap(as_fraction(t)) for t in timestamps_s]
        targets = sorted(set(wanted))
        self.stats.frames_needed += len(timestamps_s)
        got: dict[int, np.ndarray] = {}
        decode_error: str | None = None
        try:
            for pos, rgb in self._frames_at(iter(targets), short_side, max_side):
                got[pos] = rgb
        except av.error.FFmpegError as e:
            decode_error = f"decoding failed ({e.strerror or e})"
        if not got:
            raise CorruptVideoError(
                decode_error or self._index_error or "no frame could be decoded", uri=self.name
            )
        # Frames that could not be reached (damage mid-file) repeat the last frame that could.
        reached = sorted(got)
        frames = [got[reached[max(bisect.bisect_right(reached, pos) - 1, 0)]] for pos in wanted]
        missing = sum(p not in got for p in targets)
        partial = self._partial(decode_error, f"{missing} sampled frames could not be decoded" if missing else None)
        return FrameRead(np.stack(frames), [self._time_of(p) for p in wanted], self.stats.since(before), partial)

    def read_clips(
        self,
        clips: Iterable[Sequence[float | Fraction]],
        *,
        short_side: int | None = None,
        max_side: int | None = None,
        on_frame: Callable[[float, np.ndarray], None] | None = None,
    ) -> Iterator[FrameRead]:
        """One ``FrameRead`` per clip, in order, from one forward pass over the video (dense tagging).

        Clips must start in order (each clip's first instant no earlier than the one before's).
        Overlapping clips share decoded frames: every frame is decoded at most once and converted at
        most once, and only the frames of clips not yet returned are held, so memory does not grow
        with the video. ``on_frame(time_s, frame)`` sees each converted frame once, in order (shot
        detection rides on this pass). Clips past a point where the file stops decoding are not
        returned; ``stream_partial`` then says why.
        """
        self.exact_index()  # the pass reads every packet anyway
        opened: deque[list[int]] = deque()  # snapped clips whose frames are not all returned yet
        positions = _union((self._snap_all(c) for c in clips), opened)
        held: dict[int, np.ndarray] = {}
        before = replace(self.stats)
        self.stream_error = None
        last: int | None = None
        try:
            for pos, rgb in self._frames_at(positions, short_side, max_side):
                held[pos], last = rgb, pos
                if on_frame is not None:
                    on_frame(self._time_of(pos), rgb)
                while opened and opened[0][-1] <= pos:
                    yield self._cut(opened.popleft(), held, before)
                    before = replace(self.stats)
                oldest = opened[0][0] if opened else pos + 1
                for p in [p for p in held if p < oldest]:
                    del held[p]
                self.frames_held = len(held)
        except av.error.FFmpegError as e:
            self.stream_error = f"decoding failed ({e.strerror or e})"
        if last is None:
            raise CorruptVideoError(self.stream_error or self._index_error or "no frame could be decoded",
                                    uri=self.name)
        # The file stopped decoding: clips that began before that point end on its last frame.
        while opened and opened[0][0] <= last:
            yield self._cut(opened.popleft(), held, before)
            before = replace(self.stats)
        if opened or next(positions, None) is not None:
            self.stream_error = self.stream_error or "the file stopped decoding before its end"

    @property
    def stream_partial(self) -> str | None:
        """Why the last ``read_clips`` pass covered only part of the file, or None."""
        return self._partial(self.stream_error, None)

    def _snap_all(self, times: Sequence[float | Fraction]) -> list[int]:
        self.stats.frames_needed += len(times)
        return [self._snap(as_fraction(t)) for t in times]

    def _cut(self, clip: list[int], held: dict[int, np.ndarray], before: DecodeStats) -> FrameRead:
        """One clip from the held frames; a position the file never reached repeats the last one that was."""
        reached = sorted(held)
        frames = [held[reached[max(bisect.bisect_right(reached, p) - 1, 0)]] for p in clip]
        return FrameRead(np.stack(frames), [self._time_of(p) for p in clip], self.stats.since(before))

    def _time_of(self, pos: int) -> float:
        """Seconds from the first frame to the frame at grid position ``pos``."""
        grid = self.index()
        return float(Fraction(pos) / self.fps) if self.count_order else float((grid[pos] - grid[0]) * self.time_base)

    def _partial(self, decode_error: str | None, missing: str | None) -> str | None:
        """The one reason a read is partial: the index's, then decoding's, then damage met, then gaps."""
        partial = self.partial_reason or decode_error
        if partial is None and self.damage:
            partial = f"{self.damage[0]}; {len(self.damage)} problem(s) in all"
        return partial or missing

    def _frames_at(self, targets: Iterator[int], short_side: int | None,
                   max_side: int | None) -> Iterator[tuple[int, np.ndarray]]:
        """Each target grid position (ascending, unique) with the RGB frame on screen there, decoding
        forward and seeking only past keyframes; the targets are read lazily, a little ahead of the
        decoder (so that unreferenced frames nobody asked for are skipped)."""
        self._configure_threads()
        cc = self._stream.codec_context
        width, height = output_size(cc.width, cc.height, short_side, max_side)
        wanted = _Wanted(targets, self.index())
        # Frame skipping needs trustworthy timestamps; count-order reading counts every frame.
        self._wanted = wanted if self.skip_nonref and not self.count_order else None
        try:
            yield from self._read_targets(wanted, width, height)
        finally:
            self._wanted = None
            cc.skip_frame = "DEFAULT"

    def _read_targets(self, wanted: _Wanted, width: int, height: int) -> Iterator[tuple[int, np.ndarray]]:
        """Decode forward through the targets, seeking only past keyframes."""
        grid = self.index()
        frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        position = -1  # grid position of the last decoded frame
        pending: tuple[int, av.VideoFrame] | None = None
        last: tuple[int, av.VideoFrame] | None = None

        rotation = self.rotation

        def rgb(frame: av.VideoFrame) -> np.ndarray:
            self.stats.frames_converted += 1
            return upright(frame.to_ndarray(format="rgb24", width=width, height=height), rotation)

        while (target := wanted.take()) is not None:
            key_index = max(bisect.bisect_right(self._key_positions, target) - 1, 0)
            fresh = False
            # Seek when a keyframe lies between the last decoded frame and the target (never for the
            # very next frame: decoding on costs nothing, a seek would flush what the decoder holds).
            if frames is None or (not self.count_order and self._key_positions[key_index] > position + 1):
                seek_to = None if self.count_order else grid[self._key_positions[key_index]]
                frames, pending, last, fresh = self._decode(seek_to), None, None, True
            while True:
                if pending is not None:
                    (pos, frame), pending = pending, None
                else:
                    item = next(frames, None)
                    if item is None:
                        if last is not None:
                            yield target, rgb(last[1])  # the file ends early: last frame on screen
                            return
                        if seek_to is None:
                            return
                        # Nothing decodable after this keyframe (truncated file): the frame on
                        # screen at the end of what decodes lies before it.
                        self.stats.fallbacks += 1
                        key_index -= 1
                        seek_to = grid[self._key_positions[key_index]] if key_index >= 0 else None
                        frames, fresh = self._decode(seek_to), True
                        continue
                    pos, frame = item
                if fresh and pos > target and seek_to is not None:
                    # The seek landed after the frame we need (AVI-like demuxers): back off to
                    # the keyframe before, and at worst read from the start.
                    self.stats.fallbacks += 1
                    key_index -= 1
                    seek_to = grid[self._key_positions[key_index]] if key_index >= 0 else None
                    frames, last = self._decode(seek_to), None
                    continue
                fresh = False
                position = pos
                if pos < target:
                    last = (pos, frame)
                    continue
                if pos == target or last is None:
                    shown = frame
                    last = (pos, frame)
                else:  # the exact frame never came out of the decoder: the one before is on screen
                    shown = last[1]
                    pending = (pos, frame)
                yield target, rgb(shown)
                wanted.done(target)
                break


class _TableMismatch(Exception):
    """A decoded frame's time is not where the container's sample table put it (``VideoReader.read``
    then reindexes from the packets)."""


class _Wanted:
    """The target positions of one pass, pulled lazily from an ascending iterator, and the set of
    their presentation times that the decoder consults to skip frames nobody asked for: it looks
    ahead only as far as the packets it is asked about, and forgets a target once it is returned."""

    def __init__(self, targets: Iterator[int], grid: list[int]) -> None:
        self._targets, self._grid = targets, grid
        self._ahead: deque[int] = deque()
        self._pts: set[int] = set()
        self._latest: int | None = None  # presentation time of the last target pulled
        self._exhausted = False

    def _pull(self) -> bool:
        pos = next(self._targets, None)
        if pos is None:
            self._exhausted = True
            return False
        self._ahead.append(pos)
        self._latest = self._grid[pos]
        self._pts.add(self._latest)
        return True

    def __contains__(self, pts: int) -> bool:
        while not self._exhausted and (self._latest is None or self._latest < pts):
            self._pull()
        return pts in self._pts

    def take(self) -> int | None:
        """The next target, or None when there are no more."""
        if not self._ahead and not self._pull():
            return None
        return self._ahead.popleft()

    def done(self, pos: int) -> None:
        self._pts.discard(self._grid[pos])


def _union(clips: Iterator[list[int]], opened: deque[list[int]]) -> Iterator[int]:
    """The ascending, unique positions of clips that start in order, read lazily; each clip is
    appended to ``opened`` before any of its positions is produced."""
    heap: list[int] = []
    queued: set[int] = set()
    upcoming = next(clips, None)
    while True:
        # A clip's positions ascend and later clips start no earlier, so a position below the next
        # clip's first can be produced: no clip still to come can ask for it.
        while upcoming is not None and (not heap or upcoming[0] <= heap[0]):
            opened.append(upcoming)
            for p in upcoming:
                if p not in queued:
                    queued.add(p)
                    heapq.heappush(heap, p)
            upcoming = next(clips, None)
        if not heap:
            return
        p = heapq.heappop(heap)
        queued.discard(p)
        yield p


def read_frames(
    source: Source, timestamps_s: Sequence[float | Fraction], short_side: int | None = None
) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` RGB frames on screen at each instant, decoding only what is needed."""
    with VideoReader(source) as reader:
        return reader.read(timestamps_s, short_side=short_side).frames_thwc


def write_video(
    path: str | os.PathLike,
    frames_thwc: np.ndarray | Sequence[np.ndarray],
    fps: int | Fraction = 25,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    gop: int | None = None,
) -> Path:
    """Encode uint8 RGB frames to a file (synthetic data, tests, benchmarks). Written whole or not at all."""
    path = Path(path)
    frames = list(frames_thwc)
    if not frames:
        raise ValueError("frames_thwc is empty")
    height, width = frames[0].shape[:2]
    fmt = _CONTAINER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown video container for {path.name!r}: use one of {sorted(_CONTAINER_FORMATS)}")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = gop
        if options:
            stream.options = dict(options)
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
