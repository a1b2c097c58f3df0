"""Models: the registry (``registry``, ``architectures``), checkpoints (``checkpoint``), pretrained
weights from the local cache (``weights``) and the one parser for model references (``refs``).

Names are exported lazily, so importing a light submodule never pulls in torch by accident.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Architecture": "actionrec.models.registry",
    "register": "actionrec.models.registry",
    "get_architecture": "actionrec.models.architectures",
    "list_architectures": "actionrec.models.architectures",
    "LoadedModel": "actionrec.models.checkpoint",
    "build_model": "actionrec.models.checkpoint",
    "load_checkpoint": "actionrec.models.checkpoint",
    "save_checkpoint": "actionrec.models.checkpoint",
    "ModelRef": "actionrec.models.refs",
    "PinnedModel": "actionrec.models.refs",
    "parse_model_ref": "actionrec.models.refs",
    "pin_model": "actionrec.models.refs",
    "load_model": "actionrec.models.refs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'actionrec.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
