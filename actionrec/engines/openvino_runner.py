"""The OpenVINO engine on CPU. This module imports neither torch nor anything that does: a worker
that loads a converted model from the cache decodes, batches and infers with numpy and OpenVINO
only (a few hundred MB less per process than torch)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.engines.cache import ModelMeta
from actionrec.engines.choice import EngineChoice
from actionrec.errors import ModelError

MODEL_FILE = "model.xml"
_HINTS = {"f32": "f32", "bf16": "bf16", "int8": None}  # int8: the quantized layers decide; the rest as OpenVINO's default
_compiled: dict[tuple[str, str, int | None], Any] = {}
_lock = threading.Lock()


def openvino_version() -> str:
    import openvino as ov

    return ov.get_version().split("-")[0]


def openvino_variant(precision: str = "f32") -> str:
    """The conversion cache's variant for OpenVINO: its version and the stored graph's precision
    (f32 serves f32 and bf16, chosen when compiling; int8 is a quantized graph of its own). The f32
    graph has two outputs, probabilities and features (``-features``: entries converted before it
    had the second one are not read); int8 graphs quantized from it have both too."""
    return f"openvino-{openvino_version()}-{'int8' if precision == 'int8' else 'f32-features'}"


def compile_ir(model: Path | Any, precision: str, threads: int | None = None) -> Any:
    """The compiled model for an IR file (once per process: shards in one worker share it) or for an
    in-memory ``openvino.Model`` (compiled each time)."""
    import openvino as ov

    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if _HINTS[precision]:
        config["INFERENCE_PRECISION_HINT"] = _HINTS[precision]
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    if not isinstance(model, Path):
        return _compile(ov, model, config, "the converted model")
    key = (str(model), precision, threads)
    with _lock:
        if key not in _compiled:
            _compiled[key] = _compile(ov, str(model), config, str(model))
        return _compiled[key]


def _compile(ov: Any, model: Any, config: dict[str, Any], what: str) -> Any:
    try:
        return ov.Core().compile_model(model, "CPU", config)
    except RuntimeError as e:
        raise ModelError(f"OpenVINO cannot compile {what}: {str(e).splitlines()[0][:300]}") from e


class OpenVINORunner:
    """uint8 clips -> probabilities with an OpenVINO model whose graph holds the normalisation and the
    softmax (and, as a second output, the features; see ``actionrec.engines.export``). Batch size is
    dynamic: a short last batch is not padded."""

    def __init__(self, model: Path | Any, meta: ModelMeta, choice: EngineChoice, *,
                 threads: int | None = None) -> None:
        """``model``: an IR file (``model.xml``) or an in-memory ``openvino.Model``."""
        self.model = meta
        self.choice = choice
        self.path = model if isinstance(model, Path) else None
        compiled = compile_ir(model, choice.precision, threads)
        self.has_features = len(compiled.outputs) > 1
        self._request = compiled.create_infer_request()

    def run(self, batch_nthwc: np.ndarray) -> np.ndarray:
        out = self._request.infer([np.ascontiguousarray(batch_nthwc, dtype=np.uint8)])
        return np.array(out[0], dtype=np.float32)  # a copy: the request reuses its output buffer

    def run_features(self, batch_nthwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``[N, K]`` and features ``[N, C]``, both float32, from one inference."""
        if not self.has_features:
            raise ModelError(f"the OpenVINO graph of {self.model.name}@{self.model.version} ({self.choice.precision}) "
                             "has no features output (an int8 graph quantized before embeddings existed): run "
                             "`actionrec quantize` again, or use --precision f32")
        out = self._request.infer([np.ascontiguousarray(batch_nthwc, dtype=np.uint8)])
        return np.array(out[0], dtype=np.float32), np.array(out[1], dtype=np.float32)
