"""Opening a runner for a model: the one place that turns (model, engine choice) into something
that scores clips. A pinned model whose OpenVINO conversion is cached opens without torch."""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from actionrec.engines import cache
from actionrec.engines.choice import EngineChoice


class Runner(Protocol):
    """Scores uint8 clips ``[N, T, H, W, 3]`` -> float32 probabilities ``[N, K]``. ``model`` has
    ``name``, ``version``, ``arch``, ``classes`` and ``spec``. ``run_features`` returns the
    probabilities and the pooled input of the classification head, float32 ``[N, C]`` (``C`` fixed
    per model version): what embeddings are made of."""

    model: Any
    choice: EngineChoice

    def run(self, batch_nthwc: np.ndarray) -> np.ndarray: ...

    def run_features(self, batch_nthwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def open_runner(model: Any, choice: EngineChoice, *, batch_size: int = 8, torch_compile: bool = False,
                channels_last: bool | None = None, lake: str | os.PathLike | None = None,
                threads: int | None = None) -> Runner:
    """A runner for ``model``: a ``LoadedModel``, or a ``PinnedModel`` (loaded only when needed:
    an OpenVINO run whose conversion is cached never loads the checkpoint, nor torch).
    ``batch_size``, ``torch_compile`` and ``channels_last`` concern the torch engine (OpenVINO's
    batch is dynamic), ``threads`` the OpenVINO one (default: all cores)."""
    from actionrec.models.refs import PinnedModel

    if choice.engine == "openvino":
        from actionrec.engines.openvino_runner import OpenVINORunner

        if choice.precision == "int8":
            return _int8(model, choice, lake, threads)
        if isinstance(model, PinnedModel):
            hit = _cached_openvino(model.name, model.version)
            if hit is not None:
                return OpenVINORunner(hit[0], hit[1], choice, threads=threads)
        from actionrec.engines.export import cached_openvino, to_openvino
        from actionrec.models.card import UNVERSIONED

        loaded = _loaded(model, lake)
        if loaded.version == UNVERSIONED:  # weights with no identity (not saved): convert, never cache
            return OpenVINORunner(to_openvino(loaded, features=True), cache.ModelMeta.of(loaded), choice,
                                  threads=threads)
        xml, meta = cached_openvino(loaded)
        return OpenVINORunner(xml, meta, choice, threads=threads)
    from actionrec.engines.torch_runner import TorchRunner

    return TorchRunner(_loaded(model, lake), choice, batch_size=batch_size, torch_compile=torch_compile,
                       channels_last=channels_last)


def _cached_openvino(name: str, version: str, precision: str = "f32") -> tuple[Any, cache.ModelMeta] | None:
    from actionrec.engines.openvino_runner import MODEL_FILE, openvino_variant

    hit = cache.lookup("openvino", name, version, openvino_variant(precision))
    return None if hit is None else (hit[0] / MODEL_FILE, hit[1])


def _int8(model: Any, choice: EngineChoice, lake: str | os.PathLike | None, threads: int | None) -> Runner:
    """The accepted int8 graph of this model version (``actionrec quantize`` makes it), never made here:
    quantizing needs calibration videos and its agreement checked."""
    from actionrec.engines.openvino_runner import OpenVINORunner
    from actionrec.errors import ConfigError

    name, version = model.name, model.version
    hit = _cached_openvino(name, version, "int8")
    if hit is None:
        raise ConfigError(f"no accepted int8 graph of {name}@{version} on this machine: run `actionrec quantize "
                          f"MODEL --videos SOURCE` first (it is kept only if it agrees with f32), or use "
                          "--precision auto")
    return OpenVINORunner(hit[0], hit[1], choice, threads=threads)


def _loaded(model: Any, lake: str | os.PathLike | None) -> Any:
    from actionrec.models.refs import PinnedModel, load_model

    return load_model(model, lake=lake) if isinstance(model, PinnedModel) else model
