"""Object storage for sources and the lake: a local folder or ``s3://bucket/prefix``.

Every write is whole or nothing: ``atomic_path`` locally, a single PUT or a managed (multipart)
upload on S3. Listing is paginated. Keys are always made from validated parts, so a name like
``../../x`` cannot escape the lake.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from actionrec.errors import ConfigError, StorageError, VideoError
from actionrec.io import atomic
from actionrec.io.uris import is_s3, local_path, split_s3

LOCK_SUFFIX = ".lock"
UNLISTED = "cannot list this folder"
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".flv",
                              ".wmv", ".3gp"})


@dataclass(frozen=True)
class VideoObject:
    """A video found under a source: its URI and the identity used to skip work already done.
    ``error`` says why an entry that was listed cannot be read (a dangling link, a link loop): it
    becomes a failed row with that reason, never a stopped run."""

    uri: str
    etag: str
    size: int
    error: str | None = None


def _local_object(path: Path) -> VideoObject:
    try:
        st = path.stat()
    except OSError as e:
        why = "a link to a file that does not exist" if path.is_symlink() and not path.exists() else (
            e.strerror or type(e).__name__).lower()
        return VideoObject(path.absolute().as_uri(), "", 0, f"cannot read this entry: {why}")
    return VideoObject(path.resolve().as_uri(), f"{st.st_size}-{st.st_mtime_ns}", st.st_size)


class Store:
    """A root (folder or S3 prefix) with relative keys underneath."""

    def __init__(self, root: str | os.PathLike) -> None:
        text = os.fspath(root).rstrip("/")
        if not text:
            raise ConfigError("empty storage location")
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

    # -- the root itself ------------------------------------------------------------------------
    def root_exists(self) -> bool:
        """A local folder that exists, or an S3 prefix with at least one object under it."""
        if self.is_s3:
            from actionrec.io.s3 import list_objects

            return any(True for _ in list_objects(self.bucket, f"{self.prefix}/" if self.prefix else "", limit=1))
        return self.path.is_dir()

    # -- reads and writes -----------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> str:
        key = self._key(rel)
        if self.is_s3:
            from actionrec.io.s3 import put_bytes

            put_bytes(self.bucket, key, data)
            return f"s3://{self.bucket}/{key}"
        return str(atomic.write_bytes(self.path / key, data))

    def write_file(self, rel: str, source: Path) -> str:
        """Copy a local file in, streamed (a managed multipart upload on S3)."""
        key = self._key(rel)
        if self.is_s3:
            from actionrec.io.s3 import upload_file

            upload_file(Path(source), self.bucket, key)
            return f"s3://{self.bucket}/{key}"
        with atomic.atomic_path(self.path / key) as tmp:
            shutil.copyfile(source, tmp)
        return str(self.path / key)

    def read_bytes(self, rel: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        key = self._key(rel)
        if self.is_s3:
            from actionrec.io.s3 import get_bytes

            return get_bytes(self.bucket, key)
        try:
            return (self.path / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    @contextmanager
    def local_copy(self, rel: str) -> Iterator[Path | None]:
        """A local path to read the object from (the file itself, or a temporary download), or None."""
        key = self._key(rel)
        if not self.is_s3:
            path = self.path / key
            yield path if path.is_file() else None
            return
        from actionrec.io.s3 import download_to, head

        if head(self.bucket, key) is None:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="actionrec-") as tmp:
            target = Path(tmp) / Path(key).name
            try:
                download_to(f"s3://{self.bucket}/{key}", target)
            except VideoError as e:
                raise StorageError(f"cannot read s3://{self.bucket}/{key}: {e.reason}") from e
            yield target

    def compare_and_swap(self, rel: str, expected: bytes | None, new: bytes) -> bool:
        """Write ``new`` only if the object still holds ``expected`` (None: does not exist yet).
        Returns False, writing nothing, when another writer changed it first. Locally a lock file
        beside the object serialises writers; on S3 a conditional PUT does (If-Match / If-None-Match)."""
        key = self._key(rel)
        if self.is_s3:
            from actionrec.io.s3 import get_versioned, put_bytes

            found = get_versioned(self.bucket, key)
            current, etag = found if found is not None else (None, None)
            if current != expected:
                return False
            return put_bytes(self.bucket, key, new, if_match=etag, if_absent=etag is None)
        import fcntl

        target = self.path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_name(f".{target.name}{LOCK_SUFFIX}"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = target.read_bytes() if target.exists() else None
                if current != expected:
                    return False
                atomic.write_bytes(target, new)
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def exists(self, rel: str) -> bool:
        if self.is_s3:
            from actionrec.io.s3 import head

            return head(self.bucket, self._key(rel)) is not None
        return (self.path / self._key(rel)).exists()

    def delete(self, rel: str) -> None:
        key = self._key(rel)
        if self.is_s3:
            from actionrec.io.s3 import delete

            delete(self.bucket, key)
        else:
            (self.path / key).unlink(missing_ok=True)

    def list(self, rel: str = "") -> Iterator[VideoObject]:
        """Every object under ``rel`` (recursive), with its identity; temp files are not listed."""
        if self.is_s3:
            from actionrec.io.s3 import list_objects

            prefix = self._key(rel) if rel else self.prefix
            for uri, etag, size in list_objects(self.bucket, prefix + "/" if prefix else ""):
                yield VideoObject(uri, etag, size)
            return
        base = self.path / self._key(rel) if rel else self.path
        if not base.exists():
            return
        unreadable: list[OSError] = []
        for dirpath, dirnames, filenames in os.walk(base, onerror=unreadable.append):
            dirnames.sort()
            for name in sorted(filenames):
                if atomic.is_temp_name(name) or (name.startswith(".") and name.endswith(LOCK_SUFFIX)):
                    continue
                yield _local_object(Path(dirpath) / name)
        for e in unreadable:  # a folder that could not be listed
            where = Path(e.filename or base)
            yield VideoObject(where.absolute().as_uri(), "", 0, f"{UNLISTED}: {(e.strerror or '').lower()}")


def list_videos(source: str | os.PathLike) -> list[VideoObject]:
    """Videos under a source (folder, single file or S3 prefix), by extension, in a stable order."""
    text = os.fspath(source)
    if not is_s3(text):
        path = local_path(text)
        if not path.exists():
            raise ConfigError(f"source not found: {text}")
        if path.is_file():
            return [_local_object(path)]
    videos = [v for v in Store(text).list() if Path(v.uri.rsplit("/", 1)[-1]).suffix.lower() in VIDEO_EXTENSIONS
              or (v.error or "").startswith(UNLISTED)]  # a folder that could not be listed may hold videos
    return sorted(videos, key=lambda v: v.uri)


@contextmanager
def open_input(uri: str | os.PathLike) -> Iterator[Path]:
    """A local file to decode: the file itself, or a bounded temporary copy of an S3 object."""
    text = os.fspath(uri)
    if not is_s3(text):
        path = local_path(text)
        if not path.exists():
            raise VideoError("file not found", uri=text)
        yield path
        return
    from actionrec.io.s3 import download_to  # lazy: boto3 only when S3 is used

    with tempfile.TemporaryDirectory(prefix="actionrec-") as tmp:
        target = Path(tmp) / (Path(split_s3(text)[1]).name or "object")
        download_to(text, target)
        yield target
