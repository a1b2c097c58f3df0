"""int8 post-training quantization (NNCF) of a model's OpenVINO graph, accepted only with its
measured agreement.

Calibration clips come from videos the user names (what the model will see). Every other decoded
video calibrates, the rest check: the int8 graph must give the same top-1 as the f32 graph on at
least ``min_agreement`` of the held-out clips, or it is refused and nothing is cached. An accepted
graph is stored in the conversion cache beside the f32 one, with its agreement in ``meta.json``,
and ``--precision int8`` uses it from then on (torch-free, like f32).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from actionrec.engines import cache
from actionrec.engines.choice import EngineChoice
from actionrec.errors import ConfigError, ModelError


@dataclass(frozen=True)
class Quantized:
    """An accepted int8 graph: where it is and how well it agreed with f32 on held-out clips."""

    path: str
    agreement: float
    checked_clips: int
    calibration_clips: int
    max_prob_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "agreement": self.agreement, "checked_clips": self.checked_clips,
                "calibration_clips": self.calibration_clips, "max_prob_diff": self.max_prob_diff}


def check_min_agreement(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= 1
    if not ok:
        raise ConfigError(f"min_agreement must be a number in (0, 1], got {value!r}")
    return float(value)


def accept(agreement: float, checked: int, min_agreement: float) -> None:
    """The acceptance rule: enough held-out clips, and top-1 agreement at least ``min_agreement``."""
    if checked < 8:
        raise ModelError(f"only {checked} clips were left to check the int8 model against f32 (8 or more "
                         "needed): give more calibration videos")
    if agreement < min_agreement:
        raise ModelError(f"the int8 model agrees with f32 on {agreement:.1%} of {checked} held-out clips, below the "
                         f"required {min_agreement:.1%}: refused (nothing cached); keep f32, or calibrate on more "
                         "videos like the ones you tag")


def quantize(model: Any, videos: list[str], *, clips: int = 2, min_agreement: float = 0.99,
             lake: str | os.PathLike | None = None) -> Quantized:
    """Quantize ``model`` (a ``LoadedModel`` or ``PinnedModel``) on ``videos``; see the module docstring."""
    import openvino as ov

    try:
        import nncf
    except ImportError as e:
        raise ConfigError("int8 quantization needs NNCF: pip install 'actionrec[int8]'") from e

    from actionrec.data.clips import decode_clips
    from actionrec.engines.openvino_runner import MODEL_FILE, OpenVINORunner, openvino_variant
    from actionrec.engines.runners import open_runner

    min_agreement = check_min_agreement(min_agreement)
    f32 = open_runner(model, EngineChoice("openvino", "f32", "cpu"), lake=lake)
    if f32.path is None:
        raise ConfigError("only a saved model (a checkpoint, a registry version) can be quantized: its int8 "
                          "graph is cached under its version")
    meta = f32.model
    decoded = [decode_clips(uri, meta.spec, clips) for uri in videos]
    usable = [d.clips_nthwc for d in decoded if d.clips_nthwc is not None]
    calibration, check = usable[0::2], usable[1::2]
    if not calibration:
        raise ConfigError(f"none of the {len(videos)} calibration videos could be decoded")
    with _quiet():
        graph = nncf.quantize(ov.Core().read_model(str(f32.path)), nncf.Dataset(calibration),
                              subset_size=len(calibration), fast_bias_correction=True)
    if not check:
        accept(0.0, 0, min_agreement)  # refuses: nothing held out to check against
    expected = np.concatenate([f32.run(c) for c in check])
    int8 = OpenVINORunner(graph, meta, EngineChoice("openvino", "int8", "cpu"))
    got = np.concatenate([int8.run(c) for c in check])
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    accept(agreement, len(expected), min_agreement)
    figures = {"agreement": agreement, "checked_clips": len(expected),
               "calibration_clips": sum(len(c) for c in calibration),
               "max_prob_diff": float(np.abs(got - expected).max())}
    variant = openvino_variant("int8")
    with cache.publishing("openvino", meta, variant, extra={"int8": figures}) as tmp:
        ov.save_model(graph, str(tmp / MODEL_FILE), compress_to_fp16=False)
    return Quantized(str(cache.entry_dir("openvino", meta.name, meta.version, variant) / MODEL_FILE), **figures)


class _quiet:
    """NNCF logs INFO and WARNING lines and draws progress bars on stdout; stdout belongs to ``--json``, so
    the bars go to stderr and the log lines below ERROR away."""

    def __enter__(self) -> None:
        import contextlib
        import logging
        import sys

        self._logger = logging.getLogger("nncf")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        self._redirect = contextlib.redirect_stdout(sys.stderr)
        self._redirect.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._redirect.__exit__(*exc)
        self._logger.setLevel(self._level)
