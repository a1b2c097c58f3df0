"""Shared pieces of the benchmarks: machine facts, generated test videos, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(os.environ.get("ACTIONREC_BENCH_CACHE", Path(__file__).parent / ".cache"))
RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    import av
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "torch": torch.__version__, "av": av.__version__,
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu,
            "platform": platform.platform()}


SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
FOOTAGE = ("kinetics_arm_wrestling.mp4", "test_h264_340x256.mp4")


def _has_footage() -> bool:
    return all((SHARED_VIDEOS / name).exists() for name in FOOTAGE)


def _footage_frames(width: int, height: int, fps: int) -> list[Any]:
    """Source pictures for generated videos: the shared real clips when present, else synthetic.

    Real footage matters: a smooth synthetic pattern compresses to almost nothing and decodes ~5x
    faster than camera video, which flatters every pipeline that decodes more than it needs.
    """
    import av

    if _has_footage():
        frames = []
        for p in (SHARED_VIDEOS / name for name in FOOTAGE):
            with av.open(str(p)) as c:
                for f in c.decode(video=0):
                    frame = f.reformat(width=width, height=height, format="yuv420p", interpolation="BICUBIC")
                    frame.pict_type = 0  # AV_PICTURE_TYPE_NONE: the source's I-frames would force keyframes
                    frames.append(frame)
        return frames
    ys, xs = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width + 16 * fps, 3), dtype=np.uint8)
    frames = []
    for i in range(fps):
        img = texture[:, 8 * i : 8 * i + width].copy()  # a noisy texture panning right
        img[..., 2] = ((xs // 32 + ys // 32 + i) % 2) * 200
        frames.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
    return frames


def long_video(seconds: float, height: int, gop_seconds: int, fps: int = 30) -> Path:
    """An H.264 video of ``seconds`` (x264's default preset, CRF 23) with a keyframe every ``gop_seconds``.

    The pictures are the shared real clips, scaled and looped (see ``_footage_frames``); cached.
    """
    import av

    width = (height * 16 // 9) // 2 * 2
    content = "footage" if _has_footage() else "synthetic"
    path = CACHE / f"long_{seconds:g}s_{height}p_gop{gop_seconds}s_{content}.mp4"
    if path.exists():
        return path
    frames = _footage_frames(width, height, fps)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    n = int(seconds * fps)
    gop = gop_seconds * fps
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "medium", "crf": "23", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        for i in range(n):
            frame = frames[i % len(frames)]
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def in_subprocess(module: str, *args: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter, so peak RSS belongs to that measurement alone."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", module, "--worker", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since start or since ``reset_peak``) of this process, in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Restart the kernel's peak-RSS count (Linux >= 4.0), so a warm-up's transient peak is not the video's."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` (reset by exec; ``ru_maxrss`` is not, so a worker started
    by a big parent would report the parent's peak), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path
