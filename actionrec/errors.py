"""Typed errors. Every message is meant to be read by a person who did not write the code."""

from __future__ import annotations


class ActionRecError(Exception):
    """Base class of every error actionrec raises on purpose."""


class ConfigError(ActionRecError, ValueError):
    """A configuration value is invalid; the message names the field."""


class VideoError(ActionRecError):
    """A video could not be read. ``reason`` is a short phrase for the predictions table."""

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        self.reason = message
        self.uri = uri
        super().__init__(f"{uri}: {message}" if uri else message)


class EmptyVideoError(VideoError):
    """The file has zero bytes."""


class NotAVideoError(VideoError):
    """The bytes are not a container FFmpeg recognises (a text file renamed to .mp4, say)."""


class NoVideoStreamError(VideoError):
    """The container opened but holds no video stream (audio-only files)."""


class CorruptVideoError(VideoError):
    """The container has a video stream, but no frame could be decoded from it."""


class StorageError(ActionRecError):
    """An object could not be listed, read or written."""


class ModelError(ActionRecError):
    """A model reference could not be resolved, built or loaded."""


class CheckpointError(ModelError):
    """A checkpoint file is missing, malformed or unsafe to load."""


class WeightsNotFoundError(ModelError):
    """Pretrained weights are not in the local cache and there is no network to fetch them."""
