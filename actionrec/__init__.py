"""actionrec: batch action recognition for video archives.

The small, stable API: ``probe``, ``read_frames``, ``load_model`` and the ``ActionRecError`` family.
Each takes a local path, a ``file://`` or an ``s3://`` URI. Importing this package pulls in neither
torch, Prefect nor boto3 (``load_model`` imports torch when it is called).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from actionrec.errors import (
    ActionRecError,
    CheckpointError,
    ConfigError,
    CorruptVideoError,
    EmptyVideoError,
    ModelError,
    NotAVideoError,
    NoVideoStreamError,
    StorageError,
    StorageUnavailableError,
    VideoError,
    WeightsNotFoundError,
)
from actionrec.io import video as _video
from actionrec.io.storage import open_input
from actionrec.io.video import VideoInfo

if TYPE_CHECKING:
    from actionrec.inference.model import Model

__all__ = [
    "ActionRecError",
    "CheckpointError",
    "ConfigError",
    "CorruptVideoError",
    "EmptyVideoError",
    "ModelError",
    "NotAVideoError",
    "NoVideoStreamError",
    "StorageError",
    "StorageUnavailableError",
    "VideoError",
    "VideoInfo",
    "WeightsNotFoundError",
    "load_model",
    "probe",
    "read_frames",
]
__version__ = "0.1.0"


def probe(uri: str | os.PathLike) -> VideoInfo:
    """Container facts (duration_s, fps, num_frames, width, height, codec, has_audio) without decoding."""
    with open_input(uri) as path:
        info = _video.probe(path)
    return info


def read_frames(uri: str | os.PathLike, timestamps_s: Sequence[float | Fraction],
                short_side: int | None = None) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` RGB: frame t is the frame on screen at that time (seconds from the first
    frame), decoding only what is needed."""
    with open_input(uri) as path:
        return _video.read_frames(path, timestamps_s, short_side=short_side)


def load_model(ref: str | os.PathLike, *, lake: str | os.PathLike | None = None) -> Model:
    """Any model reference (checkpoint path or URI, ``name[@version]`` in ``lake``, ``torchvision:<arch>``);
    the result has ``.classes``, ``.spec`` and ``.predict(uris, top_k=, clips=)``."""
    from actionrec.inference.model import Model

    return Model.load(os.fspath(ref), lake=lake)
