"""Architectures by name: a dict behind a decorator that refuses duplicates.

Builders are registered in ``actionrec.models.architectures``, imported on first lookup rather
than at package import, so ``import actionrec`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from actionrec.errors import ModelError
from actionrec.models.spec import InputSpec


@dataclass(frozen=True)
class Architecture:
    """How to build a network and what input it expects by default."""

    name: str
    build: Callable[..., nn.Module]  # build(num_classes, **kwargs) -> module producing [N, K] logits
    default_spec: InputSpec
    order_aware: bool  # False for frame-averaging baselines that cannot see temporal order
    description: str
    pretrained: tuple[str, ...] = ()  # torchvision weight names this architecture accepts


_REGISTRY: dict[str, Architecture] = {}


def register(
    name: str,
    *,
    default_spec: InputSpec,
    order_aware: bool = True,
    description: str = "",
    pretrained: tuple[str, ...] = (),
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorate(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ModelError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = Architecture(name, build, default_spec, order_aware, description, pretrained)
        return build

    return decorate


def _load_builtin() -> None:
    import actionrec.models.architectures  # noqa: F401  (registers the built-in architectures)


def get_architecture(name: str) -> Architecture:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown architecture {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def list_architectures() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)
