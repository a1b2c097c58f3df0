"""The one atomic write: a file appears whole, with its final content, or not at all.

Every local writer in actionrec goes through ``atomic_path``: it hands out a unique temporary name
in the target's own folder (so the rename never crosses file systems), and when the block ends
without an error the data is flushed to disk and the temp file is renamed over the target. On any
error the temp file is removed. Files get the normal mode for new files (0666 minus the umask),
never the 0600 of ``mkstemp``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of ``atomic_path``'s temporary names (listings skip them)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):  # not every file system lets a folder be opened for fsync
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; write it in the block; it becomes ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {target}")
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp, open(tmp, "xb") as f:
        f.write(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))
