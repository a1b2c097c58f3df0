"""What an architecture costs, for ``actionrec models``: parameters, FLOPs per clip, and (measured only
when asked, ``--measure``) seconds per clip on this machine's CPU for each engine.

Every figure is for one clip of the architecture's default input spec, built with a 400-class head
(Kinetics-400) and random weights. FLOPs are torch's ``FlopCounterMode`` count (a multiply-add is 2
FLOPs, so twice the "GFLOPS" torchvision's docs list), taken on the meta device (no memory, no
arithmetic). Both kinds of figure are kept as small JSON files under the actionrec cache dir
(``<cache>/model-stats/``): costs keyed by architecture, input shape and torch version, timings by
architecture, input shape, CPU model, core count, engine, precision and versions, so the listing
is instant and a timing is shown only where it was taken on this kind of machine.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from actionrec.engines import cache
from actionrec.engines.choice import choose_engine, openvino_available
from actionrec.io import atomic

NUM_CLASSES = 400
CHEAP_PARAMETERS = 5_000_000  # a real forward to count FLOPs (when the meta device fails) only below this
_DIR = "model-stats"


@dataclass(frozen=True)
class Cost:
    params: int
    gflops: float


def _entry(kind: str, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in key)
    return cache.cache_root() / _DIR / kind / f"{safe}.json"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _shape(arch: str) -> str:
    from actionrec.models.architectures import get_architecture

    s = get_architecture(arch).default_spec
    return "x".join(str(n) for n in s.clip_shape[:3])


def cost(arch: str) -> Cost | None:
    """Parameters and GFLOPs of one clip, from the cache or counted now; None when it cannot be counted."""
    import torch

    path = _entry("cost", f"{arch}-{_shape(arch)}-torch{torch.__version__}")
    hit = _read(path)
    if hit is not None:
        return Cost(int(hit["params"]), float(hit["gflops"]))
    found = _count(arch)
    if found is not None:
        atomic.write_text(path, json.dumps({"params": found.params, "gflops": found.gflops}))
    return found


def _count(arch: str) -> Cost | None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from actionrec.models.architectures import get_architecture

    a = get_architecture(arch)
    s = a.default_spec
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                module = a.build(NUM_CLASSES).eval()
            params = sum(p.numel() for p in module.parameters())
            if device == "cpu" and params > CHEAP_PARAMETERS:
                return None
            clip = torch.zeros(1, 3, s.frames_per_clip, *s.crop_hw, device=device)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                module(clip)
            return Cost(int(params), round(counter.get_total_flops() / 1e9, 3))
        except Exception:  # noqa: BLE001, S112 - an op the meta device lacks: try the next way
            continue
    return None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_engines() -> list[str]:
    """The engines that can run a model on this machine's CPU."""
    return ["torch", "openvino"] if openvino_available() else ["torch"]


def _timing_key(arch: str, engine: str) -> str:
    import torch

    precision = choose_engine(engine, "auto", "cpu").precision
    versions = f"torch{torch.__version__}" + (f"-openvino{metadata.version('openvino')}" if engine == "openvino" else "")
    return f"{arch}-{_shape(arch)}-{cpu_model()}-{os.cpu_count()}cores-{engine}-{precision}-{versions}"


def stored_seconds(arch: str, engine: str) -> float | None:
    """Seconds per clip measured earlier on this kind of machine, or None."""
    hit = _read(_entry("speed", _timing_key(arch, engine)))
    return float(hit["seconds_per_clip"]) if hit is not None else None


def measure(arch: str, engine: str, repeats: int = 3) -> float:
    """Median seconds for one clip (batch 1, random weights) after a warm-up run; stored for the listing."""
    import numpy as np

    from actionrec.engines.runners import open_runner
    from actionrec.models.checkpoint import build_model

    model = build_model(arch, [str(i) for i in range(NUM_CLASSES)])
    choice = choose_engine(engine, "auto", "cpu")
    runner = open_runner(model, choice, batch_size=1)
    s = model.spec
    clip = np.random.default_rng(0).integers(0, 256, (1, *s.clip_shape),
                                              dtype=np.uint8)
    runner.run(clip)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.run(clip)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    atomic.write_text(_entry("speed", _timing_key(arch, engine)),
                      json.dumps({"seconds_per_clip": seconds, "repeats": repeats, "precision": choice.precision,
                                  "cpu": cpu_model(), "cores": os.cpu_count()}))
    return seconds
