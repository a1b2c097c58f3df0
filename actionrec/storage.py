"""Object storage for sources and the lake: a local folder or ``s3://bucket/prefix``.

Every write is whole or nothing: a temp name then ``os.replace`` locally, a single PUT on S3.
Listing is paginated. Keys are always made from validated parts, so a name like ``../../x``
cannot escape the lake.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from actionrec.errors import StorageError
from actionrec.sources import is_s3, local_path, split_s3

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".flv",
                              ".wmv", ".3gp"})


@dataclass(frozen=True)
class VideoObject:
    """A video found under a source: its URI and the identity used to skip work already done."""

    uri: str
    etag: str
    size: int


class Store:
    """A root (folder or S3 prefix) with relative keys underneath."""

    def __init__(self, root: str | os.PathLike) -> None:
        text = os.fspath(root).rstrip("/")
        self.is_s3 = is_s3(text)
        if self.is_s3:
            self.bucket, self.prefix = split_s3(text + "/")
            self.prefix = self.prefix.rstrip("/")
            self.root = text
        else:
            self.path = local_path(text).resolve()
            self.root = str(self.path)

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    # -- keys -----------------------------------------------------------------------------------
    def _key(self, rel: str) -> str:
        parts = [p for p in rel.split("/") if p]
        if any(p in {".", ".."} for p in parts) or rel.startswith("/"):
            raise StorageError(f"refusing a key that leaves the store: {rel!r}")
        joined = "/".join(parts)
        return f"{self.prefix}/{joined}" if self.is_s3 and self.prefix else joined

    def uri(self, rel: str) -> str:
        key = self._key(rel)
        return f"s3://{self.bucket}/{key}" if self.is_s3 else str(self.path / key)

    # -- reads and writes -----------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> str:
        key = self._key(rel)
        if self.is_s3:
            from actionrec.s3 import put_bytes

            put_bytes(self.bucket, key, data)
            return f"s3://{self.bucket}/{key}"
        target = self.path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return str(target)

    def write_file(self, rel: str, source: Path) -> str:
        return self.write_bytes(rel, source.read_bytes())

    def read_bytes(self, rel: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        key = self._key(rel)
        if self.is_s3:
            from actionrec.s3 import get_bytes

            return get_bytes(self.bucket, key)
        try:
            return (self.path / key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, rel: str) -> bool:
        if self.is_s3:
            from actionrec.s3 import head

            return head(self.bucket, self._key(rel)) is not None
        return (self.path / self._key(rel)).exists()

    def list(self, rel: str = "") -> Iterator[VideoObject]:
        """Every object under ``rel`` (recursive), with its identity; temp files are not listed."""
        if self.is_s3:
            from actionrec.s3 import list_objects

            prefix = self._key(rel) if rel else self.prefix
            yield from list_objects(self.bucket, prefix + "/" if prefix else "")
            return
        base = self.path / self._key(rel) if rel else self.path
        if not base.exists():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                p = Path(dirpath) / name
                st = p.stat()
                yield VideoObject(p.resolve().as_uri(), f"{st.st_size}-{st.st_mtime_ns}", st.st_size)


def list_videos(source: str | os.PathLike) -> list[VideoObject]:
    """Videos under a source (folder or S3 prefix), by extension, in a stable order."""
    text = os.fspath(source)
    if not is_s3(text):
        path = local_path(text)
        if not path.exists():
            raise StorageError(f"source not found: {text}")
        if path.is_file():
            st = path.stat()
            return [VideoObject(path.resolve().as_uri(), f"{st.st_size}-{st.st_mtime_ns}", st.st_size)]
    videos = [v for v in Store(text).list() if Path(v.uri.rsplit("/", 1)[-1]).suffix.lower() in VIDEO_EXTENSIONS]
    return sorted(videos, key=lambda v: v.uri)
