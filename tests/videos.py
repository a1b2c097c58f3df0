"""Tiny test videos whose frames carry their own index, written with PyAV.

Each frame shows its index as 12 black/white bars (bit i = bar i), big enough to survive lossy
compression, so a test can tell exactly which frame a reader returned.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 12
BAR = 8
HEIGHT = 32
WIDTH = BITS * BAR


def index_frame(i: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    for b in range(BITS):
        if (i >> b) & 1:
            frame[:, b * BAR : (b + 1) * BAR] = 255
    return frame


def frame_index(frame_hwc: np.ndarray) -> int:
    """Read the index back from a decoded (possibly rescaled) frame."""
    h, w, _ = frame_hwc.shape
    bar = w / BITS
    value = 0
    for b in range(BITS):
        x0, x1 = int(b * bar + bar / 4), int((b + 1) * bar - bar / 4)
        if frame_hwc[h // 4 : 3 * h // 4, x0:x1].mean() > 127:
            value |= 1 << b
    return value


def write_indexed(
    path: Path,
    num_frames: int,
    fps: int = 25,
    *,
    codec: str = "libx264",
    gop: int = 12,
    bframes: int = 2,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    options: dict[str, str] | None = None,
    fmt: str | None = None,
    container_options: dict[str, str] | None = None,
    background: tuple[int, int, int] | None = None,
) -> Path:
    """Encode frames 0..n-1; ``pts`` (in ``time_base``) gives variable frame timing when set;
    ``background`` paints what is black between the bars (keep it dark: the bars must still read)."""
    with av.open(str(path), mode="w", format=fmt, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if bframes:
            stream.codec_context.max_b_frames = bframes
        opts = {"preset": "ultrafast", "crf": "10"} if codec == "libx264" else {}
        if codec == "libx264":
            opts["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
        opts.update(options or {})
        stream.options = opts
        if time_base is not None:
            stream.codec_context.time_base = time_base
        for i in range(num_frames):
            pixels = index_frame(i)
            if background is not None:
                pixels = np.where(pixels == 0, np.asarray(background, np.uint8), pixels).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("aac", rate=16000)
        samples = int(16000 * seconds)
        t = np.arange(samples) / 16000
        data = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, samples, frame_size):
            chunk = data[:, start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
