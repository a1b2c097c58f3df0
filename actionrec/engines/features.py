"""Penultimate features: the input of a model's classification head (the layer its architecture
names as ``head``: ``fc``, ``head.1``, ``backbone.fc``, ``blocks.6.proj``, ``hf.classifier``...),
pooled to one ``[C]`` vector per clip. What the embeddings in the lake are made of.

The head's input is caught with a forward hook for the length of one forward pass, in the calling
thread only (runners in other threads may share the module). The same code serves the torch
engine and the OpenVINO conversion, which traces it into the graph as a second output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from actionrec.errors import ModelError


def head_module(net: nn.Module, arch: str) -> nn.Module:
    """The classification layer of ``net`` (an ``arch`` network), by its registered dotted path."""
    from actionrec.models.architectures import get_architecture

    path = get_architecture(arch).head
    owner: Any = net
    try:
        for part in path.split("."):
            owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
    except (AttributeError, IndexError, KeyError, TypeError) as e:
        raise ModelError(f"{arch}: no head layer at {path!r} to take features from") from e
    if not isinstance(owner, nn.Module):
        raise ModelError(f"{arch}: {path!r} is not a layer")
    return owner


def pool_head_input(x: torch.Tensor, head: nn.Module, clips: int) -> torch.Tensor:
    """One float32 ``[clips, C]`` row per clip from what the head received: a linear head takes its
    channels last (``[N, C]``; ``[N, T, H, W, C]`` in pytorchvideo's heads; ``[N * T, C]`` when frames
    are scored one by one), a convolution first (``[N, C, T, H, W]``); the rest is averaged."""
    if isinstance(head, nn.modules.conv._ConvNd) and x.ndim > 2:
        x = x.movedim(1, -1)
    return x.float().reshape(clips, -1, x.shape[-1]).mean(dim=1)


@contextmanager
def head_input(head: nn.Module) -> Iterator[list[torch.Tensor]]:
    """For the block: a list that receives the head's input at each call made in this thread."""
    caught: list[torch.Tensor] = []
    owner = threading.get_ident()

    def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
        if threading.get_ident() == owner:
            caught.append(args[0])

    handle = head.register_forward_pre_hook(hook)
    try:
        yield caught
    finally:
        handle.remove()


def forward_with_features(net: nn.Module, head: nn.Module, x_ncthw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``net``'s logits ``[N, K]`` and the pooled input of its head ``[N, C]`` for one batch."""
    with head_input(head) as caught:
        logits = net(x_ncthw)
    if len(caught) != 1:
        raise ModelError(f"the head layer was called {len(caught)} times in one forward pass (expected once): "
                         "no features to take")
    return logits, pool_head_input(caught[0], head, x_ncthw.shape[0])
