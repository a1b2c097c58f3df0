"""Where video bytes come from: local paths, ``file://`` URIs, and ``s3://`` objects.

boto3 is imported only when an ``s3://`` URI is opened, so the core stays light.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from actionrec.errors import StorageError, VideoError


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


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
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"not an s3://bucket/key URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


@contextmanager
def open_input(uri: str | os.PathLike) -> Iterator[str | os.PathLike]:
    """Something ``VideoReader`` can open: a local path, or a bounded temp copy of an S3 object."""
    text = os.fspath(uri)
    if not is_s3(text):
        path = local_path(text)
        if not path.exists():
            raise VideoError("file not found", uri=text)
        yield path
        return
    from actionrec.s3 import download_to  # lazy: boto3 only when S3 is used

    with tempfile.TemporaryDirectory(prefix="actionrec-") as tmp:
        target = Path(tmp) / (Path(split_s3(text)[1]).name or "object")
        download_to(text, target)
        yield target
