"""Typed errors. Every message is meant to be read by a person who did not write the code.

The class says what a caller should do: a ``ConfigError`` or ``ModelError`` will not heal by
trying again (fix the input), a ``StorageUnavailableError`` may (retry with backoff), a
``VideoError`` concerns one video (record it, go on). ``exit_status`` and ``is_transient`` are the
one place where that is turned into an exit code and a retry decision.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # the work ran, some videos failed (each has its row and reason)
EXIT_USAGE = 2  # usage or configuration error: fix the input, a retry will not help
EXIT_INCOMPLETE = 3  # the run did not finish (a shard lost, storage unreachable): a rerun takes the rest
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM


class ActionRecError(Exception):
    """Base class of every error actionrec raises on purpose."""


class ConfigError(ActionRecError, ValueError):
    """A configuration value is invalid; the message names the field."""


class DataError(ConfigError):
    """The labeled data cannot be used: too many of its videos cannot be read, or none can."""


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
    """An object could not be listed, read or written, and trying again will not change that
    (access denied, no such bucket, a path that is not a folder)."""


class StorageUnavailableError(StorageError):
    """The object store could not be reached or refused for now (network, throttling, 5xx):
    worth retrying with backoff."""


class ModelError(ActionRecError):
    """A model reference could not be resolved, built or loaded."""


class CheckpointError(ModelError):
    """A checkpoint file is missing, malformed or unsafe to load."""


class WeightsNotFoundError(ModelError):
    """Pretrained weights are not in the local cache (``actionrec models pull`` fetches them)."""


class WeightsCorruptError(ModelError):
    """A pretrained weight file is not the published one (its sha256 disagrees with its name): fetch it
    again; retrying the load will not help."""


class DownloadError(StorageUnavailableError):
    """A file could not be fetched for now (server unreachable, timeout, 5xx, connection cut short):
    nothing was kept, trying again may work."""


class RunIncompleteError(ActionRecError):
    """A pipeline run ended without doing all its work (e.g. a shard lost after its retries).

    ``row`` is the run's record (the ``runs`` row for a tag run): what was done is kept, and a rerun
    takes the rest.
    """

    def __init__(self, message: str, row: dict[str, Any] | None = None) -> None:
        self.row = row
        super().__init__(message)


class ConcurrentUpdateError(ActionRecError):
    """Another run changed the same thing first (e.g. promoted a champion meanwhile): rerun to decide
    again against what is there now."""


class LakeBusyError(ActionRecError):
    """Another run holds the lake's lease (it is tagging the same lake): rerun later, or wait longer."""


class Interrupted(ActionRecError):
    """The process was asked to stop (Ctrl-C, SIGTERM): never retried; a rerun takes the rest."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` (a lease, a server) runs."""


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may heal ``exc``: never for our own permanent errors (a bad config, a
    missing model, a bad label table); yes for outages, and for errors we did not anticipate (a lost
    worker, a dropped connection deep in a library)."""
    if isinstance(exc, StorageUnavailableError):
        return True
    return not isinstance(exc, ActionRecError)


def exit_status(exc: BaseException) -> int:
    """The command line's exit status for an error that ended a command."""
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED
    if isinstance(exc, KeyboardInterrupt | Interrupted):
        return EXIT_INTERRUPTED
    if isinstance(exc, RunIncompleteError | StorageUnavailableError | ConcurrentUpdateError | LakeBusyError):
        return EXIT_INCOMPLETE
    if isinstance(exc, VideoError):
        return EXIT_SOME_FAILED
    if isinstance(exc, ActionRecError):
        return EXIT_USAGE
    return EXIT_INCOMPLETE
