"""actionrec: batch action recognition for video archives.

The small, stable API: ``probe``, ``read_frames``, ``load_model`` and the ``ActionRecError`` family.
Importing this package pulls in neither Prefect nor boto3.
"""

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
    VideoError,
    WeightsNotFoundError,
)
from actionrec.video import VideoInfo, probe, read_frames

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
    "VideoError",
    "VideoInfo",
    "WeightsNotFoundError",
    "probe",
    "read_frames",
]
__version__ = "0.1.0"
