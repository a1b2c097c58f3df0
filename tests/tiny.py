"""Tiny arguments and inputs for every architecture, so tests over ``list_architectures()`` stay cheap:
the published R50s and base transformers are far too big to build in every test."""

from __future__ import annotations

from typing import Any

# A transformers config that builds in milliseconds: 4 frames of 32 pixels, one layer of width 32.
TINY_TRANSFORMER: dict[str, Any] = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                    "intermediate_size": 64, "image_size": 32, "patch_size": 16, "num_frames": 4}

TINY_KWARGS: dict[str, dict[str, Any]] = {
    "tiny3d": {"width": 4},
    "motion3d": {"width": 4},
    "slowfast_r50": {"width": 8, "depth": 18},
    "i3d_r50": {"width": 4},
    "videomae": {"config": {**TINY_TRANSFORMER, "tubelet_size": 2}},
    "timesformer": {"config": TINY_TRANSFORMER},
    "vivit": {"config": {**{k: v for k, v in TINY_TRANSFORMER.items() if k != "patch_size"},
                         "tubelet_size": [2, 16, 16]}},
}
# MViT has fixed positional embeddings (16x224x224); S3D needs 224 pixels; motion3d needs 6 frames
# (5 differences survive its two temporal poolings); the rest take tiny clips.
_INPUTS = {"mvit_v2_s": (16, 224), "s3d": (14, 224), "motion3d": (6, 32)}


def tiny_kwargs(arch: str) -> dict[str, Any]:
    return dict(TINY_KWARGS.get(arch, {}))


def tiny_input(arch: str) -> tuple[int, int]:
    """(frames, pixels) of the smallest clip ``arch`` takes."""
    return _INPUTS.get(arch, (4, 32))
