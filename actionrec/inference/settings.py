"""``InferenceSettings``: how models run over videos, with the one set of defaults that ``predict``,
``evaluate``, ``tag``, the flows and the Python API share (the CLI flags are generated from these
fields, the tag settings extend them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from actionrec.engines.choice import ENGINES, PRECISIONS, Engine, Precision
from actionrec.errors import ConfigError
from actionrec.options import check_int, check_positive_seconds, option

DecodeBackend = Literal["process", "thread"]
DECODE_BACKENDS: tuple[str, ...] = get_args(DecodeBackend)
CROPS = (1, 3)
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


@dataclass(frozen=True)
class InferenceSettings:
    top_k: int = option(5, "labels kept per video and per clip, best first")
    clips: int = option(3, "clips per video, spread evenly and softmax-averaged (the evaluation's multi-clip "
                           "setting, so tagging gets the accuracy evaluation reports)")
    every: float | None = option(None, "score a clip every EVERY seconds across the whole video (a dense timeline, "
                                       "for long recordings) instead of --clips clips (unset: --clips)")
    crops: int = option(1, "spatial crops per clip, softmax-averaged: 1 (centre) or 3 (both ends and the "
                           "centre of the frame's long side: three-crop testing)")
    batch_size: int = option(8, "clips per model batch (clips of different videos share a batch)")
    decode_workers: int = option(2, "parallel decode workers")
    device: str | None = option(None, "cpu, cuda, cuda:1 ... (unset: cuda when present)")
    decode_backend: DecodeBackend = option("process", "process: an FFmpeg crash costs one video; thread: lighter")
    decode_timeout_s: float | None = option(300.0, "seconds one video may take to decode before it fails "
                                                   "(process backend)")
    torch_compile: bool = option(False, "torch.compile the model with static shapes (pays off on long runs; "
                                        "torch engine)")
    engine: Engine = option("auto", "what runs the model: openvino (CPU), torch, or auto (openvino on CPU, torch "
                                    "on a GPU)")
    precision: Precision = option("auto", "f32, bf16, or auto (bf16 where the CPU has it natively, else f32; "
                                          "bf16/fp16 autocast on CUDA)")

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("top_k", "clips", "batch_size", "decode_workers"):
            check_int(owner, name, getattr(self, name), 1)
        if isinstance(self.crops, bool) or not isinstance(self.crops, int) or self.crops not in CROPS:
            raise ConfigError(f"{owner}.crops must be one of {CROPS}, got {self.crops!r}")
        if self.device is not None and not (isinstance(self.device, str) and _DEVICE.match(self.device)):
            raise ConfigError(f"{owner}.device must be cpu, cuda, cuda:N or mps, got {self.device!r}")
        if self.decode_backend not in DECODE_BACKENDS:
            raise ConfigError(f"{owner}.decode_backend must be one of {DECODE_BACKENDS}, got {self.decode_backend!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"{owner}.engine must be one of {ENGINES}, got {self.engine!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"{owner}.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.decode_timeout_s is not None:
            check_positive_seconds(owner, "decode_timeout_s", self.decode_timeout_s)
        if self.every is not None:
            check_positive_seconds(owner, "every", self.every)

    def predictor_options(self) -> dict[str, Any]:
        """The settings ``Predictor`` takes; the rest (what is scored per video) go to each ``predict`` call."""
        return {f.name: getattr(self, f.name) for f in fields(InferenceSettings) if f.name not in PER_CALL}


PER_CALL = ("top_k", "clips", "crops", "every")
DEFAULTS = InferenceSettings()
