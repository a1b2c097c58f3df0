"""Training and fine-tuning: one loop over a ``TrainConfig``, a checkpoint with its provenance.

Unreadable videos are skipped before the first epoch (listed in the checkpoint's card with their
reasons); training refuses only when their share passes ``TrainConfig.max_skipped_share``.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from actionrec.data.datasets import ClipDataset
from actionrec.data.labels import LabelTable
from actionrec.data.transforms import LabelAwareAugment, applicable, mirror_rule
from actionrec.errors import ConfigError, DataError
from actionrec.io.atomic import atomic_path
from actionrec.models.architectures import get_architecture, replace_head
from actionrec.models.card import UNVERSIONED
from actionrec.models.checkpoint import LoadedModel, build_model, save_checkpoint
from actionrec.stopping import check_stop
from actionrec.training.config import TrainConfig
from actionrec.training.losses import class_weights, make_loss

log = logging.getLogger(__name__)

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
    skipped: list[dict[str, str]]  # unreadable videos left out: uri, reason, split


def adapt_to_classes(model: LoadedModel, classes: Sequence[str]) -> LoadedModel:
    """Reuse a trained model for new classes: same backbone, a fresh head when the classes differ."""
    if list(classes) == model.classes:
        return model
    replace_head(model.module, get_architecture(model.arch).head, len(classes))
    model.classes = list(classes)
    return model


def _param_groups(module: nn.Module, head: str, cfg: TrainConfig) -> list[dict[str, Any]]:
    head_params, body_params = [], []
    for n, p in module.named_parameters():
        (head_params if n.startswith(head + ".") else body_params).append(p)
    if cfg.freeze_backbone:
        for p in body_params:
            p.requires_grad_(False)
        return [{"params": head_params, "lr": cfg.effective_lr}]
    groups = [{"params": head_params, "lr": cfg.effective_lr}]
    if body_params:
        groups.append({"params": body_params, "lr": cfg.effective_lr * cfg.backbone_lr_mult})
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
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Train on the table's ``train`` split, keep the best epoch on ``val`` (top-1), save to ``out``.

    With ``state_path``, the full training state is saved there after every epoch and, if the file
    exists when training starts, training resumes from it (same config required). ``on_epoch`` is
    called with each epoch's log (the retrain flow logs progress through it).
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
    if len({r.label for r in train_rows}) < 2:
        raise ConfigError(f"labels: the train split has one class ({train_rows[0].label}); a classifier needs two")
    ids = {c: i for i, c in enumerate(classes)}
    train_items = [(r.uri, ids[r.label]) for r in train_rows]
    val_items = [(r.uri, ids[r.label]) for r in val_rows]
    augment = None
    if cfg.augment:
        names = tuple(classes)
        declared = labels.augment or {}
        augment = LabelAwareAugment(names, mirror_rule(cfg.hflip, declared.get("hflip"), names),
                                    applicable(declared.get("reverse"), names))

    dataset = ClipDataset(train_items, model.spec, train=True, augment=augment, seed=cfg.seed,
                          repeats=cfg.clips_per_video, min_crop_scale=cfg.min_crop_scale)
    val_set = ClipDataset(val_items, model.spec, train=False) if val_items else None
    skipped = _skip_unreadable(dataset, val_set, cfg, progress)
    if val_set is not None and not len(val_set):
        val_set = None
    train_items = dataset.items
    mixing = np.random.default_rng(cfg.seed)

    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    module = model.module.to(device)
    head = get_architecture(model.arch).head
    groups = _param_groups(module, head, cfg)
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.effective_lr, momentum=cfg.momentum,
                                                     weight_decay=cfg.effective_weight_decay)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.effective_lr, weight_decay=cfg.effective_weight_decay)
    label_ids = [y for _, y in train_items]
    weight = class_weights(label_ids, len(classes)).to(device) if cfg.class_weighted else None
    criterion = make_loss(cfg.loss, gamma=cfg.focal_gamma, weight=weight, label_smoothing=cfg.label_smoothing).to(device)

    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = None
    if cfg.balanced_sampling:
        w = class_weights(label_ids, len(classes))[torch.as_tensor(label_ids * dataset.repeats)]  # item i: video i % n
        sampler = WeightedRandomSampler(w.double(), num_samples=len(dataset), replacement=True, generator=generator)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=cfg.num_workers, generator=generator, drop_last=len(dataset) > cfg.batch_size,
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
        if "mixing_rng" in saved:  # mixup's draws go on where they stopped
            mixing.bit_generator.state = saved["mixing_rng"]
    bar = tqdm(total=cfg.epochs, initial=first_epoch - 1, desc=f"train {model.arch}", unit="epoch",
               disable=not progress)
    for epoch in range(first_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        dataset.epoch = epoch
        module.train()
        losses, correct, seen = 0.0, 0, 0
        for clips, target in loader:
            check_stop()
            for g, base in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = base * factor(step)
            clips = clips.to(device, non_blocking=True)
            target = target.to(device, non_blocking=True)
            lam, partner = 1.0, target
            if cfg.mixup > 0:  # blend each clip with another of the batch, and their labels alike
                lam = float(mixing.beta(cfg.mixup, cfg.mixup))
                order = torch.from_numpy(mixing.permutation(len(target))).to(device)
                clips, partner = lam * clips + (1 - lam) * clips[order], target[order]
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = module(clips)
            loss = criterion(logits.float(), target)
            if lam < 1:
                loss = lam * loss + (1 - lam) * criterion(logits.float(), partner)
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
                "mixing_rng": mixing.bit_generator.state,
            })
        if on_epoch is not None:  # after the state is saved: what it reports survives a crash
            on_epoch(history[-1])
        if cfg.patience and epoch - best_epoch >= cfg.patience:
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval().cpu()
    model.module = module
    model.version = UNVERSIONED  # new weights: the init's version no longer names them (saving sets one)
    seconds = time.perf_counter() - started
    model.provenance = {
        "model_name": model_name or model.name,
        "labels": labels.source,
        "labels_sha256": labels.sha256,
        "train_videos": len(train_items),
        "val_videos": len(val_set) if val_set is not None else 0,
        "skipped_videos": skipped,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_top1": best_top1 if val_set is not None else None,
        "train_config": {**cfg.to_dict(), "lr": cfg.effective_lr, "weight_decay": cfg.effective_weight_decay},
        "seconds": round(seconds, 1),
        "history": [asdict(h) for h in history],
    }
    if model_name:
        model.name = model_name
    if out is not None:
        save_checkpoint(model, out)
    return TrainResult(model, history, best_top1 if val_set is not None else None, best_epoch, seconds,
                       skipped)


def _skip_unreadable(train_set: ClipDataset, val_set: ClipDataset | None, cfg: TrainConfig,
                     progress: bool) -> list[dict[str, str]]:
    """Open every video once; drop the unreadable ones with a warning, refuse past the stated share."""
    listed = len({u for u, _ in train_set.items})
    bad = train_set.prepare(progress=progress, desc="reading training videos")
    if listed and len(bad) / listed > cfg.max_skipped_share:
        shown = "; ".join(f"{u}: {r}" for u, r in list(bad.items())[:3])
        raise DataError(
            f"{len(bad)} of {listed} training videos cannot be read ({len(bad) / listed:.0%}, more than the "
            f"{cfg.max_skipped_share:.0%} allowed by max_skipped_share), e.g. {shown}")
    if not train_set.items:
        raise DataError("no training video can be read")
    skipped = [{"uri": u, "reason": r, "split": "train"} for u, r in bad.items()]
    if val_set is not None:
        skipped += [{"uri": u, "reason": r, "split": "val"}
                    for u, r in val_set.prepare(progress=progress, desc="reading validation videos").items()]
    for s in skipped:
        log.warning("skipping unreadable %s video %s: %s", s["split"], s["uri"], s["reason"])
    return skipped


def _save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Whole or not at all: a crash while saving leaves the previous epoch's state readable."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _val_top1(module: nn.Module, val_set: ClipDataset, device: torch.device) -> float:
    """Single centre clip per video: cheap enough to run every epoch."""
    module.eval()
    loader = DataLoader(val_set, batch_size=16)
    correct = 0
    with torch.inference_mode():
        for clips, target in loader:
            correct += int((module(clips.to(device)).argmax(-1).cpu() == target).sum())
    return correct / len(val_set)
