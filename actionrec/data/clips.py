"""From a video URI to model-ready uint8 clips, without torch: this is what decode workers run.

Kept free of torch so worker processes start fast and small; normalisation to float happens where
the batch is assembled (on the GPU when there is one, where it is free).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from actionrec.data.sampling import dense_clips, uniform_clips
from actionrec.data.spec import InputSpec
from actionrec.errors import ActionRecError, VideoError
from actionrec.inference.results import Shot
from actionrec.io.storage import open_input
from actionrec.io.video import VideoInfo, VideoReader
from actionrec.moments.shots import ShotDetector


def crop_thwc(frames_thwc: np.ndarray, size: int | tuple[int, int], rng: random.Random | None = None) -> np.ndarray:
    """Centre crop to ``size`` (square, or (height, width)), or a random one when ``rng`` is given;
    pads by edge replication if too small."""
    ch, cw = (size, size) if isinstance(size, int) else size
    t, h, w, _ = frames_thwc.shape
    if h < ch or w < cw:
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        frames_thwc = np.pad(frames_thwc, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="edge")
        t, h, w, _ = frames_thwc.shape
    if rng is None:
        top, left = (h - ch) // 2, (w - cw) // 2
    else:
        top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
    return frames_thwc[:, top : top + ch, left : left + cw]


def view_crops_thwc(frames_thwc: np.ndarray, size: tuple[int, int], views: int) -> list[np.ndarray]:
    """``views`` crops of ``size`` (height, width): 1 is the centre crop; 3 are both ends and the centre
    of the frame's long side (three-crop testing: together they cover the frame)."""
    if views == 1:
        return [crop_thwc(frames_thwc, size)]
    ch, cw = size
    _, h, w, _ = frames_thwc.shape
    if h < ch or w < cw:  # smaller than one crop: padded once, the same view three times
        return [crop_thwc(frames_thwc, size)] * views
    top, left = (h - ch) // 2, (w - cw) // 2
    if w - cw >= h - ch:
        boxes = [(top, x) for x in np.linspace(0, w - cw, views).round().astype(int)]
    else:
        boxes = [(y, left) for y in np.linspace(0, h - ch, views).round().astype(int)]
    return [frames_thwc[:, y : y + ch, x : x + cw] for y, x in boxes]


@dataclass
class DecodedVideo:
    """What a decode worker hands back: uint8 clips ``[N * views, T, H, W, 3]`` (each clip's views
    together), or the reason there are none."""

    uri: str
    clips_nthwc: np.ndarray | None
    spans: list[tuple[float, float]] = field(default_factory=list)
    info: VideoInfo | None = None
    decode_s: float = 0.0
    partial_reason: str | None = None
    error: str | None = None
    frames_decoded: int = 0
    views: int = 1
    shots: list[Shot] = field(default_factory=list)  # dense streams only


@dataclass
class DenseClip:
    """One clip of a dense stream: its place in the video and its ``views`` crops ``[views, T, H, W, 3]``."""

    index: int
    span: tuple[float, float]
    views_nthwc: np.ndarray


def _failure(uri: str, error: Exception, started: float) -> DecodedVideo:
    """Any failure to decode as one video's reason, never an exception."""
    if isinstance(error, VideoError):
        reason = error.reason
    elif isinstance(error, ActionRecError):
        reason = str(error)
    else:
        reason = f"unexpected error while decoding: {type(error).__name__}: {error}"
    return DecodedVideo(uri, None, decode_s=time.perf_counter() - started, error=reason)


def stream_clips(uri: str, spec: InputSpec, every: float, views: int = 1) -> Iterator[DenseClip | DecodedVideo]:
    """A clip every ``every`` seconds across the whole video, streamed as it is decoded (one forward
    pass, see ``VideoReader.read_clips``), then one ``DecodedVideo`` that closes the stream: the
    container facts, the shots found on the decoded frames, the decode time and work, and why it
    is partial or failed. A failure after some
    clips still ends the stream with a failed ``DecodedVideo``."""
    started = time.perf_counter()
    busy = 0.0  # time spent decoding, not waiting for the consumer
    try:
        with open_input(uri) as source, VideoReader(source) as reader:
            info = reader.info()
            duration = float(reader.duration)
            times = dense_clips(reader.duration, reader.fps, every, spec.clip_sampling)
            end_of = 1 / float(reader.fps)
            shots = ShotDetector()  # on the frames this pass converts anyway
            for i, read in enumerate(reader.read_clips(times, short_side=spec.short_side, on_frame=shots.add)):
                span = (read.frame_times_s[0], min(read.frame_times_s[-1] + end_of, duration))
                crops = np.stack(view_crops_thwc(read.frames_thwc, spec.crop_hw, views))
                busy += time.perf_counter() - started
                yield DenseClip(i, span, crops)
                started = time.perf_counter()
            busy += time.perf_counter() - started
            yield DecodedVideo(uri, None, [], info, busy, reader.stream_partial,
                               frames_decoded=reader.stats.frames_decoded, views=views, shots=shots.shots(duration))
    except Exception as e:  # noqa: BLE001 - an unexpected failure is still one video's row, with its reason
        failed = _failure(uri, e, started)
        failed.decode_s += busy
        yield failed


def decode_clips(uri: str, spec: InputSpec, num_clips: int, views: int = 1) -> DecodedVideo:
    """Open, sample ``num_clips`` clips, crop ``views`` crops of each; any failure becomes a reason,
    never an exception."""
    start = time.perf_counter()
    try:
        with open_input(uri) as source, VideoReader(source) as reader:
            info = reader.info()
            times = uniform_clips(reader.duration, reader.fps, num_clips, spec.clip_sampling)
            read = reader.read([t for clip in times for t in clip], short_side=spec.short_side)
            t = spec.frames_per_clip
            per_clip = [read.frames_thwc[i * t : (i + 1) * t] for i in range(num_clips)]
            clips = np.ascontiguousarray(np.stack([v for c in per_clip for v in view_crops_thwc(c, spec.crop_hw, views)]))
            half = 1 / (2 * reader.fps)
            duration = reader.duration
            spans = [(float(max(c[0] - half, 0)), float(min(c[-1] + half, duration))) for c in times]
            return DecodedVideo(uri, clips, spans, info, time.perf_counter() - start, read.partial_reason,
                                frames_decoded=read.stats.frames_decoded, views=views)
    except Exception as e:  # noqa: BLE001 - an unexpected failure is still one video's row, with its reason
        return _failure(uri, e, start)
