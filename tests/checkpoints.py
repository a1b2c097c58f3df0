"""A small random-weight checkpoint for tests that need a model but not a trained one."""

from __future__ import annotations

from pathlib import Path

import torch

from actionrec.models import build_model, save_checkpoint


def write_tiny_checkpoint(path: Path, classes: list[str], name: str = "tiny", frames: int = 4) -> Path:
    torch.manual_seed(0)
    model = build_model("tiny3d", classes, width=4)
    model.spec = model.spec.replace(frames_per_clip=frames, short_side=32, crop_size=32)
    save_checkpoint(model, path, {"model_name": name})
    return path
