"""The torch engine: eager (or ``torch.compile``d) PyTorch, on CPU or GPU."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actionrec.data.transforms import normalize_ncthw
from actionrec.engines.choice import EngineChoice

if TYPE_CHECKING:
    from actionrec.models.checkpoint import LoadedModel

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _to_channels_last_3d(module: torch.nn.Module) -> bool:
    """Put the 3-D convolutions' weights in channels_last_3d; False when there are none.

    ``module.to(memory_format=channels_last_3d)`` would fail on a network with 2-D convolutions
    (TSN-style models), whose 4-D weights have no 3-D layout.
    """
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv3d)]
    for conv in convs:
        conv.to(memory_format=torch.channels_last_3d)
    return bool(convs)


class TorchRunner:
    """uint8 clips -> probabilities with a torch module. ``torch_compile``: static shapes (a short
    last batch is padded, so one graph serves the run) and, unless told otherwise, channels_last_3d."""

    def __init__(self, model: LoadedModel, choice: EngineChoice, *, batch_size: int, torch_compile: bool = False,
                 channels_last: bool | None = None) -> None:
        self.model = model
        self.choice = choice
        self.device = torch.device(choice.device)
        self.batch_size = batch_size
        cuda = self.device.type == "cuda"
        self.autocast_dtype = _AUTOCAST.get(choice.precision)
        self.module = model.module.to(self.device).eval()
        wanted = (cuda or torch_compile) if channels_last is None else channels_last
        self.channels_last = wanted and _to_channels_last_3d(self.module)
        self.torch_compile = torch_compile
        self._forward = torch.compile(self.module, dynamic=False) if torch_compile else self.module
        self._head: torch.nn.Module | None = None  # found on the first run_features

    def _prepare(self, batch_nthwc: np.ndarray | torch.Tensor, pad: bool) -> tuple[torch.Tensor, int]:
        """uint8 clips on the device, normalised (NCTHW), and how many of them are real (not padding)."""
        x = torch.from_numpy(batch_nthwc) if isinstance(batch_nthwc, np.ndarray) else batch_nthwc
        cuda = self.device.type == "cuda"
        n = len(x)
        if pad and n < self.batch_size:  # one static shape: no recompilation
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))])
        if cuda:
            x = x.pin_memory()
        x = normalize_ncthw(x.to(self.device, non_blocking=cuda), self.model.spec)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x, n

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype else nullcontext()

    def run(self, batch_nthwc: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 ``[N, T, H, W, 3]`` -> float32 ``[N, K]``; conversion and normalisation on the device."""
        x, n = self._prepare(batch_nthwc, pad=self.torch_compile)
        with torch.inference_mode(), self._autocast():
            logits = self._forward(x)[:n]
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    def run_features(self, batch_nthwc: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``[N, K]`` and the pooled input of the classification head ``[N, C]``
        (float32 both). The eager module runs here even under ``torch_compile``: a compiled graph
        does not see the hook that catches the head's input."""
        from actionrec.engines.features import forward_with_features

        if self._head is None:
            from actionrec.engines.features import head_module

            self._head = head_module(self.module, self.model.arch)
        x, _ = self._prepare(batch_nthwc, pad=False)
        with torch.inference_mode(), self._autocast():
            logits, features = forward_with_features(self.module, self._head, x)
        return torch.softmax(logits.float(), dim=-1).cpu().numpy(), features.float().cpu().numpy()
