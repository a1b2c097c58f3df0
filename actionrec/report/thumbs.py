"""Small JPEG thumbnails for the report, as ``data:`` URIs: one decoded frame per video, scaled
inside FFmpeg's scaler to fit ``size`` pixels. A video that cannot be read any more (deleted,
replaced by something else, access denied, too big to fetch, past the time budget) gets a
placeholder with the reason; nothing here raises for a video."""

from __future__ import annotations

import base64
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from actionrec.io.uris import is_s3
from actionrec.stopping import check_stop

JPEG_QUALITY = 72


@dataclass(frozen=True)
class Thumb:
    data_uri: str | None  # data:image/jpeg;base64,...; None: a placeholder
    reason: str | None = None  # why there is no picture
    width: int = 0
    height: int = 0


def _why(e: BaseException) -> str:
    from actionrec.errors import VideoError

    if isinstance(e, VideoError):
        return e.reason
    return str(e) or type(e).__name__


def jpeg_data_uri(frame_hwc, size: int) -> Thumb:
    """A uint8 RGB frame as a JPEG ``data:`` URI no larger than ``size`` on its longest side."""
    from PIL import Image

    image = Image.fromarray(frame_hwc)
    image.thumbnail((size, size))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Thumb("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), None,
                 image.width, image.height)


def thumbnail(uri: str, at_s: float, *, size: int = 160, video_bytes: int | None = None,
              max_s3_bytes: int | None = None) -> Thumb:
    """The frame on screen at ``at_s`` as a thumbnail, or a placeholder that says why not."""
    from actionrec.io.storage import open_input
    from actionrec.io.video import VideoReader

    if is_s3(uri) and max_s3_bytes is not None and video_bytes is not None and video_bytes > max_s3_bytes:
        return Thumb(None, f"not fetched: {video_bytes / 1e6:.0f} MB is over the report's limit")
    try:
        with open_input(uri) as path, VideoReader(path) as reader:
            frames = reader.read([max(0.0, at_s)], max_side=size).frames_thwc
        return jpeg_data_uri(frames[0], size)
    except Exception as e:  # noqa: BLE001 - any failure is this video's placeholder, never the report's
        return Thumb(None, f"cannot read the video any more: {_why(e)}")


@dataclass(frozen=True)
class Wanted:
    uri: str
    at_s: float
    video_bytes: int | None = None


def thumbnails(wanted: list[Wanted], *, size: int, workers: int, budget_s: float,
               max_s3_bytes: int | None) -> dict[tuple[str, float], Thumb]:
    """Thumbnails keyed by (uri, at_s), decoded ``workers`` at a time; what is not done within
    ``budget_s`` seconds is a placeholder (the report must stay cheap for the flow)."""
    unique = list({(w.uri, w.at_s): w for w in wanted}.values())
    deadline = time.monotonic() + budget_s
    out: dict[tuple[str, float], Thumb] = {}

    def one(w: Wanted) -> Thumb:
        check_stop()  # Ctrl-C or SIGTERM: the report stops between videos
        if time.monotonic() > deadline:
            return Thumb(None, "not made: the report's thumbnail time budget was spent")
        return thumbnail(w.uri, w.at_s, size=size, video_bytes=w.video_bytes, max_s3_bytes=max_s3_bytes)

    if not unique:
        return out
    with ThreadPoolExecutor(max_workers=min(workers, len(unique)), thread_name_prefix="report-thumb") as pool:
        for w, thumb in zip(unique, pool.map(one, unique), strict=True):
            out[(w.uri, w.at_s)] = thumb
    return out
