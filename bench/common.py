"""Shared pieces of the benchmarks: machine facts, generated test videos, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
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


def long_video(minutes: float, height: int, gop_seconds: int, fps: int = 30) -> Path:
    """A generated H.264 video (moving gradient + bars) with a keyframe every ``gop_seconds``; cached."""
    import av

    width = (height * 16 // 9) // 2 * 2
    path = CACHE / f"long_{minutes:g}min_{height}p_gop{gop_seconds}s.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    n = int(minutes * 60 * fps)
    gop = gop_seconds * fps
    ys, xs = np.mgrid[0:height, 0:width]
    # A second of distinct frames, converted to YUV once and re-encoded with new timestamps:
    # generation costs the encoder's time only.
    cycle = []
    for i in range(fps):
        img = np.empty((height, width, 3), np.uint8)
        img[..., 0] = (xs + 8 * i) % 256
        img[..., 1] = (ys + 4 * i) % 256
        img[..., 2] = ((xs // 32 + i) % 2) * 200
        cycle.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "28",
                     "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=2"}
        for i in range(n):
            frame = cycle[i % fps]
            frame.pts = i
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


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path
