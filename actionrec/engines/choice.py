"""Which engine runs a model, at which precision: one rule, read by every entry point.

- engine ``auto``: OpenVINO on CPU, torch on a GPU (CUDA, MPS) or when OpenVINO is not installed;
- precision ``auto``: bf16 where the CPU computes it natively (AVX512-BF16 or AMX), f32 on other
  CPUs (emulated bf16 is ~60x slower than f32 there: 65 s against 1 s per clip measured on an
  AVX2-only EPYC); on CUDA, torch autocast in bf16 (fp16 on GPUs without bf16). ``int8`` is
  never automatic: it is a quantized graph that ``actionrec quantize`` made and accepted.

A request the machine cannot honour (``--precision bf16`` on a CPU without it, ``--engine openvino``
on a GPU, a device it does not have) is a ``ConfigError`` at once, not a slow or broken run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from actionrec.errors import ConfigError

Engine = Literal["auto", "torch", "openvino"]
ENGINES: tuple[str, ...] = get_args(Engine)
Precision = Literal["auto", "f32", "bf16", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
ExportFormat = Literal["openvino", "onnx"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class EngineChoice:
    """A resolved choice: ``engine`` torch or openvino, ``precision`` f32, bf16 or fp16, ``device``."""

    engine: str
    precision: str
    device: str

    def __post_init__(self) -> None:
        if self.engine not in ("torch", "openvino"):
            raise ConfigError(f"EngineChoice.engine must be torch or openvino, got {self.engine!r}")
        if self.precision not in ("f32", "bf16", "fp16", "int8"):
            raise ConfigError(f"EngineChoice.precision must be f32, bf16, fp16 or int8, got {self.precision!r}")
        if self.precision == "int8" and self.engine != "openvino":
            raise ConfigError("precision int8 runs on the openvino engine only")

    def __str__(self) -> str:
        return f"{self.engine} {self.precision} on {self.device}"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively; ``ACTIONREC_CPU_BF16=0/1`` overrides the detection."""
    forced = os.environ.get("ACTIONREC_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    return any(f in cpu_flags() for f in CPU_BF16_FLAGS)


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def cuda_present() -> bool:
    """Whether a CUDA GPU is usable. On Linux a machine without NVIDIA's driver answers without
    importing torch (an OpenVINO worker stays torch-free)."""
    if "torch" not in sys.modules and sys.platform.startswith("linux") and not Path("/proc/driver/nvidia").exists():
        return False
    import torch

    return torch.cuda.is_available()


def check_device(device: str) -> None:
    """A device this machine has (``InferenceSettings`` checked the spelling)."""
    if device == "cpu":
        return
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            raise ConfigError(f"device {device!r} was asked for, but this machine has "
                              f"{count or 'no'} CUDA device{'s' if count != 1 else ''}")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' was asked for, but this machine has no Apple GPU")


def choose_engine(engine: str = "auto", precision: str = "auto", device: str | None = None, *,
                  torch_compile: bool = False) -> EngineChoice:
    """Resolve ``auto`` (see the module docstring) and refuse what this machine cannot do.
    ``torch_compile`` asks for the torch engine (``auto`` picks it)."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = device or ("cuda" if cuda_present() else "cpu")
    check_device(device)
    on_cpu = device == "cpu"
    if torch_compile and engine == "openvino":
        raise ConfigError("torch_compile applies to the torch engine; drop it or use --engine torch")
    if engine == "auto":
        engine = "openvino" if on_cpu and openvino_available() and not torch_compile else "torch"
    if precision == "int8" and engine != "openvino":
        raise ConfigError("precision int8 is a quantized OpenVINO graph (actionrec quantize): it needs the openvino "
                          "engine on the CPU")
    if engine == "openvino":
        if not on_cpu:
            raise ConfigError(f"the openvino engine runs on the CPU; for device {device!r} use --engine torch")
        if not openvino_available():
            raise ConfigError("the openvino engine was asked for, but openvino is not installed "
                              "(pip install openvino), or use --engine torch")
    if on_cpu:
        if precision == "bf16" and not cpu_has_bf16():
            raise ConfigError("precision bf16 was asked for, but this CPU has no native bf16 (AVX512-BF16 or AMX), "
                              "where it runs many times slower than f32; use --precision f32 or auto")
        resolved = precision if precision != "auto" else ("bf16" if cpu_has_bf16() else "f32")
    elif precision == "auto":
        import torch

        cuda = device.startswith("cuda")
        resolved = "bf16" if cuda and torch.cuda.is_bf16_supported() else ("fp16" if cuda else "f32")
    else:
        resolved = precision
    return EngineChoice(engine, resolved, device)
