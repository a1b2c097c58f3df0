"""Losses for imbalanced labels: focal loss and inverse-frequency class weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FocalLoss(nn.Module):
    """Lin et al. 2017: cross-entropy scaled by (1 - p_t)^gamma, so easy examples weigh less."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=-1)
        ce = F.nll_loss(log_p, target, reduction="none")
        if self.label_smoothing:
            ce = (1 - self.label_smoothing) * ce - self.label_smoothing * log_p.mean(dim=-1)
        p_t = log_p.gather(1, target[:, None]).squeeze(1).exp()
        loss = (1 - p_t).pow(self.gamma) * ce
        if self.weight is not None:
            w = self.weight[target]
            return (loss * w).sum() / w.sum()
        return loss.mean()


def class_weights(label_ids: Sequence[int], num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (absent classes get weight 0)."""
    counts = torch.bincount(torch.as_tensor(list(label_ids), dtype=torch.long), minlength=num_classes).float()
    weights = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    return weights * (counts > 0).sum() / weights.sum()


def make_loss(kind: str, *, gamma: float, weight: torch.Tensor | None, label_smoothing: float) -> nn.Module:
    if kind == "focal":
        return FocalLoss(gamma, weight, label_smoothing)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
