"""Pretrained weights from the local torch cache only: nothing is downloaded at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from actionrec.errors import ModelError, WeightsNotFoundError


def weights_cache_path(url: str) -> Path:
    """Where torchvision keeps a downloaded weight file (``$TORCH_HOME/hub/checkpoints/<name>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_cached_weights(url: str) -> dict[str, torch.Tensor]:
    """The state dict published at ``url``, read from the local cache (weights only, no pickled code)."""
    path = weights_cache_path(url)
    if not path.exists():
        raise WeightsNotFoundError(
            f"pretrained weights are not in the local cache: put {Path(url).name} (from {url}) at {path} "
            "(or set TORCH_HOME to a folder whose hub/checkpoints holds it)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsNotFoundError(f"cannot read pretrained weights at {path}: {e}") from e


def weights_member(enum: Any, name: str, arch: str) -> Any:
    """``enum[name]`` of a torchvision weights enum, or a ``ModelError`` that lists the choices."""
    try:
        return enum[name]
    except KeyError:
        raise ModelError(
            f"{arch} has no pretrained weights {name!r}; choose one of {', '.join(m.name for m in enum)}"
        ) from None
