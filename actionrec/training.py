"""Training and fine-tuning: one config object, one loop, a checkpoint with its provenance.

Defaults come from measurement, not from the textbook: a small 3D CNN trained from scratch on the
synthetic pairs reached 0.23-0.30 top-1 in minutes with SGD(0.01, momentum 0.9), and 0.97 with
AdamW(2e-3) + cosine. The textbook recipe stays one flag away (``optimizer="sgd", lr=0.01``).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from actionrec.clips import crop_thwc
from actionrec.errors import ConfigError
from actionrec.labels import LabelTable
from actionrec.losses import class_weights, make_loss
from actionrec.models.checkpoint import LoadedModel, build_model, save_checkpoint
from actionrec.models.spec import InputSpec
from actionrec.sampling import random_clip, uniform_clips
from actionrec.sources import open_input
from actionrec.transforms import LabelAwareAugment, applicable, to_clip_cthw
from actionrec.video import DecodedFrames, VideoReader, output_size

OPTIMIZERS = ("adamw", "sgd")
LOSSES = ("ce", "focal")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; validated here so a typo fails before any work."""

    arch: str = "tiny3d"
    epochs: int = 40
    batch_size: int = 8
    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    loss: str = "ce"
    focal_gamma: float = 2.0
    class_weighted: bool = False
    balanced_sampling: bool = False
    label_smoothing: float = 0.0
    augment: bool = True  # only transforms the dataset declares (augment.json) are applied
    seed: int = 0
    amp: bool = True  # CUDA only
    patience: int = 0  # early stopping after this many epochs without a better val top-1 (0: off)
    pretrained: str | None = None  # torchvision weights name, e.g. KINETICS400_V1
    freeze_backbone: bool = False
    backbone_lr_mult: float = 1.0
    num_workers: int = 0
    device: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    spec_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_epochs", 0 <= self.warmup_epochs < self.epochs or self.epochs == 1, "in [0, epochs)"),
            ("loss", self.loss in LOSSES, f"one of {LOSSES}"),
            ("focal_gamma", self.focal_gamma >= 0, ">= 0"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("patience", self.patience >= 0, ">= 0"),
            ("backbone_lr_mult", self.backbone_lr_mult >= 0, ">= 0"),
            ("num_workers", self.num_workers >= 0, ">= 0"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"TrainConfig.{name} must be {rule}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ClipDataset(Dataset):
    """Decodes one clip per item: random position + declared augmentations for training."""

    def __init__(
        self,
        items: Sequence[tuple[str, int]],
        spec: InputSpec,
        *,
        train: bool,
        augment: LabelAwareAugment | None = None,
        seed: int = 0,
        cache_mb: int = 1024,
    ) -> None:
        self.items = list(items)
        self.spec = spec
        self.train = train
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.cache_bytes = cache_mb * 2**20
        self._cache: dict[str, DecodedFrames] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        uri, label = self.items[i]
        rng = random.Random(f"{self.seed}:{self.epoch}:{i}")
        spec = self.spec
        video = self._cache.get(uri)
        if video is None:
            video = self._decode(uri)
        if self.train:
            times = random_clip(video.duration, video.fps, spec.clip_sampling, rng)
        else:
            times = uniform_clips(video.duration, video.fps, 1, spec.clip_sampling)[0]
        frames = video.read(times)
        frames = crop_thwc(frames, spec.crop_size, rng if self.train else None)
        if self.train and self.augment is not None:
            frames, label = self.augment(frames, label, rng)
        return to_clip_cthw(frames, spec), label

    def _decode(self, uri: str) -> DecodedFrames | _LazyVideo:
        """Short videos are decoded once and kept (epochs re-read them); long ones are read per item."""
        with open_input(uri) as source, VideoReader(source) as reader:
            info = reader.info()
            width, height = output_size(info.width, info.height, self.spec.short_side)
            size = info.num_frames * width * height * 3
            if self._cached_bytes + size <= self.cache_bytes:
                video = reader.decode_all(short_side=self.spec.short_side)
                self._cache[uri] = video
                self._cached_bytes += size
                return video
        return _LazyVideo(uri, self.spec.short_side)


class _LazyVideo:
    """A video too large for the cache: opened and read for each request."""

    def __init__(self, uri: str, short_side: int) -> None:
        self.uri, self.short_side = uri, short_side
        with open_input(uri) as source, VideoReader(source) as reader:
            self.duration, self.fps = reader.duration, reader.fps

    def read(self, timestamps_s: Sequence[Fraction]) -> np.ndarray:
        with open_input(self.uri) as source, VideoReader(source) as reader:
            return reader.read(timestamps_s, short_side=self.short_side).frames_thwc


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    train_top1: float
    val_top1: float | None
    lr: float
    seconds: float


@dataclass
class TrainResult:
    model: LoadedModel
    history: list[EpochLog]
    best_val_top1: float | None
    best_epoch: int
    seconds: float


def classifier_layer(module: nn.Module, num_classes: int) -> str:
    """Name of the last layer that outputs class scores (the head transfer learning replaces)."""
    name = None
    for n, m in module.named_modules():
        if (isinstance(m, nn.Linear) and m.out_features == num_classes) or (
            isinstance(m, nn.Conv3d) and m.out_channels == num_classes and m.kernel_size == (1, 1, 1)
        ):
            name = n
    if name is None:
        raise ConfigError(f"cannot find a classification layer with {num_classes} outputs")
    return name


def adapt_to_classes(model: LoadedModel, classes: Sequence[str]) -> LoadedModel:
    """Reuse a trained model for new classes: same backbone, a fresh head when the classes differ."""
    from actionrec.models.architectures import replace_head

    if list(classes) == model.classes:
        return model
    head = classifier_layer(model.module, model.num_classes)
    replace_head(model.module, head, len(classes))
    model.classes = list(classes)
    return model


def _param_groups(module: nn.Module, head: str, cfg: TrainConfig) -> list[dict[str, Any]]:
    head_params, body_params = [], []
    for n, p in module.named_parameters():
        (head_params if n.startswith(head + ".") else body_params).append(p)
    if cfg.freeze_backbone:
        for p in body_params:
            p.requires_grad_(False)
        return [{"params": head_params, "lr": cfg.lr}]
    groups = [{"params": head_params, "lr": cfg.lr}]
    if body_params:
        groups.append({"params": body_params, "lr": cfg.lr * cfg.backbone_lr_mult})
    return groups


def _schedule(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    total = cfg.epochs * steps_per_epoch
    warm = cfg.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(total - warm, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    cfg: TrainConfig,
    labels: LabelTable,
    *,
    init: LoadedModel | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    model_name: str | None = None,
    state_path: str | Path | None = None,
) -> TrainResult:
    """Train on the table's ``train`` split, keep the best epoch on ``val`` (top-1), save to ``out``.

    With ``state_path``, the full training state is saved there after every epoch and, if the file
    exists when training starts, training resumes from it (same config required).
    """
    from tqdm.auto import tqdm

    seed_everything(cfg.seed)
    classes = list(labels.classes)
    if init is not None:
        model = adapt_to_classes(init, classes)
        model.arch_kwargs = dict(model.arch_kwargs)
    else:
        model = build_model(cfg.arch, classes, pretrained=cfg.pretrained, **cfg.arch_kwargs)
    if cfg.spec_overrides:
        model.spec = model.spec.replace(**cfg.spec_overrides)
    train_rows = labels.split("train")
    val_rows = labels.split("val")
    if not train_rows:
        raise ConfigError("labels: the train split is empty")
    ids = {c: i for i, c in enumerate(classes)}
    train_items = [(r.uri, ids[r.label]) for r in train_rows]
    val_items = [(r.uri, ids[r.label]) for r in val_rows]
    augment = None
    if cfg.augment and labels.augment:
        names = tuple(classes)
        augment = LabelAwareAugment(names, applicable(labels.augment.get("hflip"), names),
                                    applicable(labels.augment.get("reverse"), names))

    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    module = model.module.to(device)
    head = classifier_layer(module, len(classes))
    groups = _param_groups(module, head, cfg)
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    label_ids = [y for _, y in train_items]
    weight = class_weights(label_ids, len(classes)).to(device) if cfg.class_weighted else None
    criterion = make_loss(cfg.loss, gamma=cfg.focal_gamma, weight=weight, label_smoothing=cfg.label_smoothing).to(device)

    dataset = ClipDataset(train_items, model.spec, train=True, augment=augment, seed=cfg.seed)
    val_set = ClipDataset(val_items, model.spec, train=False) if val_items else None
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = None
    if cfg.balanced_sampling:
        w = class_weights(label_ids, len(classes))[torch.as_tensor(label_ids)]
        sampler = WeightedRandomSampler(w.double(), num_samples=len(train_items), replacement=True, generator=generator)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=cfg.num_workers, generator=generator, drop_last=len(train_items) > cfg.batch_size,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    base_lrs = [g["lr"] for g in opt.param_groups]
    factor = _schedule(cfg, len(loader))
    autocast_dtype = torch.bfloat16 if device.type == "cuda" and cfg.amp else None

    history: list[EpochLog] = []
    best_top1, best_epoch, best_state = -1.0, 0, None
    step, started, first_epoch = 0, time.perf_counter(), 1
    if state_path is not None and Path(state_path).exists():
        saved = torch.load(state_path, map_location=device, weights_only=True)
        if saved["config"] != cfg.to_dict() or saved["labels_sha256"] != labels.sha256:
            raise ConfigError(f"cannot resume from {state_path}: it was written for another config or label table")
        module.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        best_top1, best_epoch, best_state = saved["best_top1"], saved["best_epoch"], saved["best_state"]
        history = [EpochLog(**h) for h in saved["history"]]
        step, first_epoch = saved["step"], saved["epoch"] + 1
        torch.set_rng_state(saved["torch_rng"])
        generator.set_state(saved["loader_rng"])
    bar = tqdm(total=cfg.epochs, initial=first_epoch - 1, desc=f"train {model.arch}", unit="epoch",
               disable=not progress)
    for epoch in range(first_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        dataset.epoch = epoch
        module.train()
        losses, correct, seen = 0.0, 0, 0
        for clips, target in loader:
            for g, base in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = base * factor(step)
            clips = clips.to(device, non_blocking=True)
            target = target.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = module(clips)
            loss = criterion(logits.float(), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses += loss.item() * len(target)
            correct += int((logits.argmax(-1) == target).sum())
            seen += len(target)
        val_top1 = _val_top1(module, val_set, device) if val_set is not None else None
        score = val_top1 if val_top1 is not None else correct / max(seen, 1)
        if score > best_top1:
            best_top1, best_epoch = score, epoch
            best_state = copy.deepcopy(module.state_dict())
        history.append(EpochLog(epoch, losses / max(seen, 1), correct / max(seen, 1), val_top1,
                                opt.param_groups[0]["lr"], time.perf_counter() - t0))
        bar.set_postfix(loss=f"{losses / max(seen, 1):.3f}", val=f"{val_top1:.3f}" if val_top1 is not None else "-")
        bar.update(1)
        if state_path is not None:
            _save_state(state_path, {
                "config": cfg.to_dict(), "labels_sha256": labels.sha256, "epoch": epoch, "step": step,
                "model": module.state_dict(), "optimizer": opt.state_dict(), "best_top1": best_top1,
                "best_epoch": best_epoch, "best_state": best_state, "history": [asdict(h) for h in history],
                "torch_rng": torch.get_rng_state(), "loader_rng": generator.get_state(),
            })
        if cfg.patience and epoch - best_epoch >= cfg.patience:
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval().cpu()
    model.module = module
    seconds = time.perf_counter() - started
    model.provenance = {
        "model_name": model_name or model.name,
        "labels": labels.source,
        "labels_sha256": labels.sha256,
        "train_videos": len(train_items),
        "val_videos": len(val_items),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_top1": best_top1 if val_items else None,
        "train_config": cfg.to_dict(),
        "seconds": round(seconds, 1),
        "history": [asdict(h) for h in history],
    }
    if model_name:
        model.name = model_name
    if out is not None:
        save_checkpoint(model, out)
    return TrainResult(model, history, best_top1 if val_items else None, best_epoch, seconds)


def _save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Whole or not at all: a crash while saving leaves the previous epoch's state readable."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _val_top1(module: nn.Module, val_set: ClipDataset, device: torch.device) -> float:
    """Single centre clip per video: cheap enough to run every epoch."""
    module.eval()
    loader = DataLoader(val_set, batch_size=16)
    correct = 0
    with torch.inference_mode():
        for clips, target in loader:
            correct += int((module(clips.to(device)).argmax(-1).cpu() == target).sum())
    return correct / len(val_set)
