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


def write_colour_checkpoint(path: Path, colours: dict[str, tuple[int, int, int]], name: str = "colours",
                            sample_fps: float = 2.0, frames: int = 4) -> Path:
    """A tiny3d whose top-1 is the nearest of ``colours`` to the clip's colour: weights set by hand, so
    a test knows what it should answer for any clip (a trained model's answers are only likely).

    Each conv block passes the three colour channels through (centre tap 1, batch norm identity;
    the first block adds 3 so ReLU keeps them), global max pooling gives the clip's brightest value
    per channel, and the head is the nearest-centroid rule written as a linear layer."""
    torch.manual_seed(0)
    model = build_model("tiny3d", list(colours), width=4)
    model.spec = model.spec.replace(frames_per_clip=frames, sample_fps=sample_fps, short_side=32, crop_size=32)
    net = model.module
    offset = 3.0
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for block in (net.features[0], net.features[2], net.features[4], net.features[6]):
            conv, bn = block[0], block[1]
            kt, kh, kw = conv.kernel_size
            for c in range(3):
                conv.weight[c, c, kt // 2, kh // 2, kw // 2] = 1.0
            bn.weight.fill_(1.0)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.eps = 0.0
        net.features[0][1].bias[:3] = offset
        mean, std = torch.tensor(model.spec.mean), torch.tensor(model.spec.std)
        centres = torch.stack([(torch.tensor(rgb) / 255.0 - mean) / std + offset for rgb in colours.values()])
        head = net.head[1]
        # logits -|x - m|^2 / 4 up to a constant: (2 m.x - |m|^2) / 4, so scores stay below 1
        head.weight[:, :3] = centres / 2
        head.bias[:] = -(centres**2).sum(dim=1) / 4
    save_checkpoint(model, path, {"model_name": name})
    return path
