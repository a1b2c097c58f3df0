"""Turning a loaded torch model into a serving graph: uint8 clips ``[N, T, H, W, 3]`` in, class
probabilities ``[N, K]`` out, with the checkpoint's normalisation and a softmax inside, and the
batch dimension left dynamic. ``actionrec export`` writes this graph; the OpenVINO cache keeps the
same graph with a second output, ``features`` ``[N, C]``: the pooled input of the classification
head (see ``actionrec.engines.features``), which the tag flow's embeddings are made of. The
features are computed on the way to the probabilities anyway, so the second output costs nothing
measurable when unused."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from actionrec.data.transforms import normalize_ncthw
from actionrec.engines import cache
from actionrec.engines.cache import ModelMeta
from actionrec.engines.choice import EXPORT_FORMATS
from actionrec.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from actionrec.models.checkpoint import LoadedModel



class ServingModule(nn.Module):
    """The model with its preprocessing and softmax: what an engine runs."""

    def __init__(self, model: LoadedModel) -> None:
        super().__init__()
        self.net = model.module
        self.spec = model.spec

    def forward(self, clips_nthwc: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(normalize_ncthw(clips_nthwc, self.spec)).float(), dim=-1)


class FeatureServingModule(ServingModule):
    """The serving graph with a second output: probabilities ``[N, K]`` and features ``[N, C]``."""

    def __init__(self, model: LoadedModel) -> None:
        from actionrec.engines.features import head_module

        super().__init__(model)
        self.head = head_module(model.module, model.arch)

    def forward(self, clips_nthwc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        from actionrec.engines.features import forward_with_features

        logits, features = forward_with_features(self.net, self.head, normalize_ncthw(clips_nthwc, self.spec))
        return torch.softmax(logits.float(), dim=-1), features


def example_input(model: LoadedModel, batch: int = 1) -> torch.Tensor:
    s = model.spec
    return torch.randint(0, 256, (batch, *s.clip_shape), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


OUTPUTS = ("probs", "features")  # the cached graph's outputs, in this order


def to_openvino(model: LoadedModel, *, features: bool = False) -> Any:
    """An ``openvino.Model`` of the serving graph (dynamic batch); with ``features``, its second
    output is the pooled input of the classification head (the cached graph; ``export`` has none)."""
    import openvino as ov

    serving = (FeatureServingModule(model) if features else ServingModule(model)).eval()
    x = example_input(model)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python ints
            converted = ov.convert_model(serving, example_input=x, input=[ov.PartialShape([-1, *x.shape[1:]])])
        for output, name in zip(converted.outputs, OUTPUTS, strict=False):
            output.get_tensor().set_names({name})
        return converted
    except Exception as e:  # noqa: BLE001 - the converter raises many kinds; the model is what failed
        raise ModelError(f"{model.name}@{model.version} ({model.arch}) cannot be converted to OpenVINO: "
                         f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}") from e


def cached_openvino(model: LoadedModel) -> tuple[Path, ModelMeta]:
    """The model's OpenVINO IR from the conversion cache (probabilities and features), converting
    (once) on a miss."""
    import openvino as ov

    from actionrec.engines.openvino_runner import MODEL_FILE, openvino_variant

    meta = ModelMeta.of(model)
    variant = openvino_variant()
    hit = cache.lookup("openvino", meta.name, meta.version, variant)
    if hit is None or hit[1].spec != meta.spec or hit[1].classes != meta.classes:
        converted = to_openvino(model, features=True)
        with cache.publishing("openvino", meta, variant, extra={"outputs": list(OUTPUTS)}) as tmp:
            ov.save_model(converted, str(tmp / MODEL_FILE), compress_to_fp16=False)
        hit = cache.lookup("openvino", meta.name, meta.version, variant)
        if hit is None:
            raise ModelError(f"the OpenVINO cache entry for {meta.name}@{meta.version} could not be written "
                             f"under {cache.cache_root()}")
    folder, found = hit
    return folder / MODEL_FILE, found


@dataclass(frozen=True)
class Exported:
    """An exported model file and how closely it agrees with torch on one random batch."""

    path: Path
    format: str
    max_prob_diff: float
    top1_agree: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "max_prob_diff": self.max_prob_diff,
                "top1_agree": self.top1_agree}


def export(model: LoadedModel, fmt: str, out: str | Path) -> Exported:
    """Write the serving graph to folder ``out`` as OpenVINO IR (``model.xml``/``.bin``) or ONNX
    (``model.onnx``), with ``meta.json`` (classes, input spec and layout), then read the file back
    with OpenVINO (which reads both) and compare it with torch on a random batch."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = ModelMeta.of(model)
    if fmt == "openvino":
        import openvino as ov

        target = out / "model.xml"
        ov.save_model(to_openvino(model), str(target), compress_to_fp16=False)
    else:
        target = out / "model.onnx"
        _export_onnx(model, target)
    (out / cache.META).write_text(json.dumps({**meta.to_dict(), "format": fmt}, indent=2))
    diff, agree = agreement(model, target)
    return Exported(target, fmt, diff, agree)


def agreement(model: LoadedModel, exported: Path, batch: int = 2) -> tuple[float, bool]:
    """Largest probability difference between torch and an exported file (f32), and whether top-1 agrees."""
    import numpy as np
    import openvino as ov

    x = example_input(model, batch)
    with torch.inference_mode():
        expected = ServingModule(model).eval()(x).numpy()
    compiled = ov.Core().compile_model(str(exported), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = np.asarray(compiled([x.numpy()])[0])
    return float(np.abs(got - expected).max()), bool((got.argmax(1) == expected.argmax(1)).all())


def _export_onnx(model: LoadedModel, target: Path) -> None:
    try:
        import onnx  # noqa: F401 - the exporter needs it; say so before tracing
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ConfigError("ONNX export needs the onnx and onnxscript packages: pip install 'actionrec[onnx]'") from e
    serving = ServingModule(model).eval()
    x = example_input(model, batch=2)
    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(serving, (x,), dynamo=True, input_names=["clips_nthwc"],
                                        output_names=["probs"], dynamic_shapes={"clips_nthwc": {0: batch}},
                                        verbose=False)
            program.save(str(target))
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"{model.name}@{model.version} ({model.arch}) cannot be exported to ONNX: "
                         f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}") from e
