"""Architectures by name: a dict behind a decorator that refuses duplicates.

This module holds the mechanism only; ``actionrec.models.architectures`` registers the built-in
networks and is where lookups go (``get_architecture``), so the two never import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from actionrec.data.spec import InputSpec
from actionrec.errors import ModelError


@dataclass(frozen=True)
class Architecture:
    """How to build a network, what input it expects, and which layer is its classification head."""

    name: str
    build: Callable[..., nn.Module]  # build(num_classes, **kwargs) -> module producing [N, K] logits
    default_spec: InputSpec
    head: str  # dotted path of the last classification layer (replaced for new classes)
    order_aware: bool = True  # False for frame-averaging baselines that cannot see temporal order
    description: str = ""
    # Pretrained weight names, each with the input spec its authors evaluated it with.
    weights: dict[str, InputSpec] = field(default_factory=dict)
    # Where each pretrained weight file is published (``actionrec models pull`` fetches it; run time
    # reads it from the local cache only).
    urls: dict[str, str] = field(default_factory=dict)
    # Who publishes those weights: the prefix of their model references (``torchvision:r3d_18``,
    # ``pytorchvideo:slowfast_r50``; ``hf`` architectures get theirs by ``hf:<hub id or folder>``).
    publisher: str = "torchvision"

    @property
    def pretrained(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def spec_for(self, weights: str | None) -> InputSpec:
        """The input spec for these weights (their published evaluation settings), or the default."""
        return self.weights.get(weights, self.default_spec) if weights else self.default_spec


_REGISTRY: dict[str, Architecture] = {}


def register(
    name: str,
    *,
    default_spec: InputSpec,
    head: str,
    order_aware: bool = True,
    description: str = "",
    weights: dict[str, InputSpec] | None = None,
    urls: dict[str, str] | None = None,
    publisher: str = "torchvision",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorate(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ModelError(f"architecture {name!r} is already registered")
        unknown = sorted(set(urls or {}) - set(weights or {}))
        if unknown:
            raise ModelError(f"architecture {name!r}: urls for weights it does not declare: {', '.join(unknown)}")
        _REGISTRY[name] = Architecture(name, build, default_spec, head, order_aware, description, dict(weights or {}),
                                       dict(urls or {}), publisher)
        return build

    return decorate


def registered(name: str) -> Architecture:
    """An architecture registered so far (``architectures.get_architecture`` also loads the built-ins)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown architecture {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def registered_names() -> list[str]:
    return sorted(_REGISTRY)
