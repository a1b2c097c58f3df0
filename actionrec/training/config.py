"""``TrainConfig``: every training default, in one place. The command line, the retrain flow and
the Python API all read their defaults from here (the CLI flags are generated from these fields).

Defaults come from measurement, not from the textbook: AdamW + cosine trains the small networks
from scratch where the textbook's SGD(0.01, momentum 0.9) stalls (figures in the README,
Performance). The textbook recipe stays one flag away (``optimizer="sgd"``), and then gets SGD's
own learning rate and weight decay, not AdamW's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from actionrec.errors import ConfigError
from actionrec.options import option

Optimizer = Literal["adamw", "sgd"]
Loss = Literal["ce", "focal"]
Mirror = Literal["auto", "declared", "off"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
LOSSES: tuple[str, ...] = get_args(Loss)
MIRRORS: tuple[str, ...] = get_args(Mirror)
# What an unset lr / weight_decay means for each optimizer.
OPTIMIZER_DEFAULTS: dict[str, dict[str, float]] = {
    "adamw": {"lr": 2e-3, "weight_decay": 0.05},
    "sgd": {"lr": 0.01, "weight_decay": 1e-4},
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; validated here so a typo fails before any work."""

    arch: str = option("motion3d", "architecture (see `actionrec models`)")
    epochs: int = option(40, "passes over the training split")
    batch_size: int = option(8, "clips per optimisation step")
    optimizer: Optimizer = option("adamw", "optimizer")
    lr: float | None = option(None, "learning rate (unset: 2e-3 for adamw, 0.01 for sgd)")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float | None = option(None, "weight decay (unset: 0.05 for adamw, 1e-4 for sgd)")
    warmup_epochs: int = option(1, "epochs of linear learning-rate warm-up before the cosine decay")
    loss: Loss = option("ce", "ce (cross-entropy) or focal (for imbalanced labels)")
    focal_gamma: float = option(2.0, "focal loss gamma")
    class_weighted: bool = option(False, "inverse-frequency class weights in the loss")
    balanced_sampling: bool = option(False, "sample classes equally often")
    label_smoothing: float = option(0.0, "label smoothing in [0, 1)")
    augment: bool = option(True, "apply the flips/reversals the data set declares (augment.json)")
    hflip: Mirror = option("auto", "mirror training clips: declared (only as augment.json maps classes), auto "
                                   "(also when no class name says a direction: left, right, clockwise...), off")
    clips_per_video: int = option(1, "training clips drawn from each video per epoch, each at its own place and crop")
    min_crop_scale: float = option(1.0, "scale jitter: a training crop is this share or more of the largest "
                                        "box of the model's shape that fits the frame, with aspect jitter, "
                                        "resized (1: a fixed-size random crop)")
    mixup: float = option(0.0, "mixup alpha: blend pairs of training clips and their labels (0: off)")
    seed: int = option(0, "random seed")
    amp: bool = option(True, "bf16 autocast on CUDA")
    patience: int = option(0, "early stopping after this many epochs without a better val top-1 (0: off)")
    pretrained: str | None = option(None, "pretrained weights for --arch, e.g. KINETICS400_V1 (from the local cache)")
    freeze_backbone: bool = option(False, "train the new head only")
    backbone_lr_mult: float = option(1.0, "backbone learning rate = lr x this")
    num_workers: int = option(0, "data loader worker processes")
    device: str | None = option(None, "cpu, cuda, cuda:1 ... (unset: cuda when present)")
    max_skipped_share: float = option(0.05, "largest share of unreadable training videos that are skipped "
                                          "(with a warning, listed in the card) before training refuses")
    arch_kwargs: dict[str, Any] = option({}, "architecture arguments (width, dropout...)", cli=False)
    spec_overrides: dict[str, Any] = option({}, "input spec fields to change (frames_per_clip, crop_size...)", cli=False)

    def __post_init__(self) -> None:
        def finite(x: Any) -> bool:
            return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

        def integer(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        checks = [
            ("arch", isinstance(self.arch, str) and bool(self.arch), "a registered architecture name"),
            ("epochs", integer(self.epochs) and self.epochs >= 1, "an integer >= 1"),
            ("batch_size", integer(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}"),
            ("lr", self.lr is None or (finite(self.lr) and self.lr > 0), "a finite number > 0"),
            ("momentum", finite(self.momentum) and 0 <= self.momentum < 1, "in [0, 1)"),
            ("weight_decay", self.weight_decay is None or (finite(self.weight_decay) and self.weight_decay >= 0),
             "a finite number >= 0"),
            ("warmup_epochs", integer(self.warmup_epochs)
             and (0 <= self.warmup_epochs < self.epochs or (self.epochs == 1 and self.warmup_epochs <= 1)),
             "an integer in [0, epochs)"),
            ("loss", self.loss in LOSSES, f"one of {LOSSES}"),
            ("hflip", self.hflip in MIRRORS, f"one of {MIRRORS}"),
            ("clips_per_video", integer(self.clips_per_video) and 1 <= self.clips_per_video <= 64,
             "an integer in [1, 64]"),
            ("min_crop_scale", finite(self.min_crop_scale) and 0.1 <= self.min_crop_scale <= 1, "in [0.1, 1]"),
            ("mixup", finite(self.mixup) and 0 <= self.mixup <= 10, "a finite number in [0, 10]"),
            ("focal_gamma", finite(self.focal_gamma) and self.focal_gamma >= 0, "a finite number >= 0"),
            ("label_smoothing", finite(self.label_smoothing) and 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("seed", integer(self.seed) and self.seed >= 0, "an integer >= 0"),
            ("patience", integer(self.patience) and self.patience >= 0, "an integer >= 0"),
            ("backbone_lr_mult", finite(self.backbone_lr_mult) and self.backbone_lr_mult >= 0, "a finite number >= 0"),
            ("num_workers", integer(self.num_workers) and self.num_workers >= 0, "an integer >= 0"),
            ("max_skipped_share", finite(self.max_skipped_share) and 0 <= self.max_skipped_share <= 1, "in [0, 1]"),
            ("arch_kwargs", isinstance(self.arch_kwargs, dict), "a dict"),
            ("spec_overrides", isinstance(self.spec_overrides, dict), "a dict"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"TrainConfig.{name} must be {rule}, got {getattr(self, name)!r}")

    @property
    def effective_lr(self) -> float:
        """The learning rate used: ``lr``, or the optimizer's default when unset."""
        return self.lr if self.lr is not None else OPTIMIZER_DEFAULTS[self.optimizer]["lr"]

    @property
    def effective_weight_decay(self) -> float:
        return self.weight_decay if self.weight_decay is not None else OPTIMIZER_DEFAULTS[self.optimizer]["weight_decay"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_options(cls, options: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
        """A config from a dict of options, refusing unknown names (a typo) with the known ones."""
        merged = {**(options or {}), **overrides}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**merged)
