"""From a video URI to model-ready uint8 clips, without torch: this is what decode workers run.

Kept free of torch so worker processes start fast and small; normalisation to float happens where
the batch is assembled (on the GPU when there is one, where it is free).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np

from actionrec.data.sampling import uniform_clips
from actionrec.data.spec import InputSpec
from actionrec.errors import ActionRecError, VideoError
from actionrec.io.storage import open_input
from actionrec.io.video import VideoInfo, VideoReader


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
    except VideoError as e:
        return DecodedVideo(uri, None, decode_s=time.perf_counter() - start, error=e.reason)
    except ActionRecError as e:
        return DecodedVideo(uri, None, decode_s=time.perf_counter() - start, error=str(e))
    except Exception as e:  # noqa: BLE001 - an unexpected failure is still one video's row, with its reason
        return DecodedVideo(uri, None, decode_s=time.perf_counter() - start,
                            error=f"unexpected error while decoding: {type(e).__name__}: {e}")
