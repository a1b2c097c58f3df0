"""Model registry, checkpoints and references."""

from actionrec.models.checkpoint import LoadedModel, build_model, load_checkpoint, save_checkpoint
from actionrec.models.refs import load_model
from actionrec.models.registry import Architecture, get_architecture, list_architectures, register
from actionrec.models.spec import InputSpec

__all__ = [
    "Architecture",
    "InputSpec",
    "LoadedModel",
    "build_model",
    "get_architecture",
    "list_architectures",
    "load_checkpoint",
    "load_model",
    "register",
    "save_checkpoint",
]
