"""URIs: local paths, ``file://`` and ``s3://``. Pure string and path arithmetic, no I/O."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from actionrec.errors import ConfigError


def is_s3(uri: str | os.PathLike) -> bool:
    return os.fspath(uri).startswith("s3://")


def local_path(uri: str | os.PathLike) -> Path:
    """A local path for a plain path or a ``file://`` URI."""
    text = os.fspath(uri)
    if text.startswith("file://"):
        return Path(unquote(urlparse(text).path))
    return Path(text)


def normalize_uri(uri: str | os.PathLike) -> str:
    """``s3://`` URIs as given; local paths as absolute ``file://`` URIs (the lake's identity)."""
    text = os.fspath(uri)
    if is_s3(text):
        return text
    return local_path(text).resolve().as_uri()


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError(f"not an s3://bucket/key URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def relative_identity(uri: str, base: str | os.PathLike | None) -> str:
    """A name for ``uri`` that does not change when its data set moves: the path relative to
    ``base`` (the folder or S3 prefix of the table that lists it) when it lies below it, else the
    object key (S3) or the absolute path (local)."""
    if is_s3(uri):
        key = split_s3(uri)[1]
        if base is not None and is_s3(base):
            prefix = split_s3(os.fspath(base).rstrip("/") + "/")[1]
            if split_s3(os.fspath(base).rstrip("/") + "/")[0] == split_s3(uri)[0] and key.startswith(prefix):
                return key[len(prefix):]
        return key
    path = local_path(uri)
    if base is not None and not is_s3(base):
        try:
            return path.relative_to(local_path(base)).as_posix()
        except ValueError:
            pass
    return path.as_posix()
