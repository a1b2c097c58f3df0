"""Pretrained weights from the local torch cache only: nothing is downloaded at run time
(``actionrec models pull`` fetches them, see ``actionrec.models.download``).

A cached file is checked against the sha256 prefix its published name carries (torchvision's
``r3d_18-b3b3357e.pth``, the rule of torch.hub's ``HASH_REGEX``) before it is read. The check is
remembered in a small sidecar beside the file (``.<name>.verified.json``: size, mtime, ctime, inode
and the sha256): while the file's stat matches, it is not hashed again. Any write to the file, a
copy or a rename changes its ctime or inode, so a replaced, truncated or re-copied file is hashed
again; only bytes changed under the file system (bit rot that keeps every timestamp) go unseen
until the sidecar is deleted. Where the folder is read-only, no sidecar is written and every load
hashes the file (a fraction of a second for a 100 MB file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch

from actionrec.errors import ModelError, WeightsCorruptError, WeightsNotFoundError
from actionrec.io import atomic

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's: the sha256 prefix in a published file name
_CHUNK = 1 << 20


def weights_cache_path(url: str) -> Path:
    """Where torchvision keeps a downloaded weight file (``$TORCH_HOME/hub/checkpoints/<name>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def published_hash(name: str) -> str | None:
    """The sha256 prefix a published file name carries, or None when it carries none."""
    m = HASH_REGEX.search(name)
    return m.group(1) if m and m.group(1) else None


def pull_command(url: str) -> str:
    """The command that fetches the file published at ``url`` (an architecture that names it in its
    ``urls``), or a hint where none does."""
    from actionrec.models.registry import registered, registered_names

    for arch in registered_names():
        for weights, published in registered(arch).urls.items():
            if published == url:
                return f"actionrec models pull {registered(arch).publisher}:{arch}:{weights}"
    return f"actionrec models pull torchvision:<arch>:<weights> (the architecture that publishes {url})"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified.json")


def _stat_key(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def check_digest(name: str, digest: str) -> bool:
    """Whether a sha256 agrees with the prefix in the file's published name (True when it has none)."""
    expected = published_hash(name)
    return expected is None or digest.startswith(expected)


def remember_verified(path: Path, digest: str, st: os.stat_result | None = None) -> None:
    """Record that ``path`` (as it is now, or as ``st`` saw it) hashed to ``digest``; best effort."""
    with suppress(OSError):
        st = st or path.stat()
        atomic.write_text(sidecar_path(path), json.dumps({**_stat_key(st), "sha256": digest}))


def verify_cached(path: Path, url: str) -> None:
    """Refuse a cached weight file whose sha256 does not start with its published prefix (hashing it
    only when its sidecar no longer matches the file, see the module docstring)."""
    expected = published_hash(path.name)
    if expected is None:
        return
    st = path.stat()
    with suppress(OSError, ValueError, TypeError):
        seen = json.loads(sidecar_path(path).read_text())
        if {k: seen.get(k) for k in _stat_key(st)} == _stat_key(st) and str(seen["sha256"]).startswith(expected):
            return
    digest = file_sha256(path)
    if not digest.startswith(expected):
        with suppress(OSError):
            sidecar_path(path).unlink()
        raise WeightsCorruptError(
            f"pretrained weights at {path} are damaged or not the published file (sha256 {digest[:12]}..., its "
            f"name says {expected}...): fetch it again with `{pull_command(url)}`"
        )
    if _stat_key(path.stat()) == _stat_key(st):  # unchanged while it was hashed
        remember_verified(path, digest, st)


def load_cached_weights(url: str) -> dict[str, torch.Tensor]:
    """The state dict published at ``url``, read from the local cache (weights only, no pickled code)
    once its published hash is checked."""
    path = weights_cache_path(url)
    if not path.exists():
        raise WeightsNotFoundError(
            f"pretrained weights are not in the local cache: run `{pull_command(url)}` (or, offline, put "
            f"{path.name} from {url} at {path}; TORCH_HOME moves that folder)"
        )
    verify_cached(path, url)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsNotFoundError(f"cannot read pretrained weights at {path}: {e}; fetch them again with "
                                   f"`{pull_command(url)}`") from e


def weights_member(enum: Any, name: str, arch: str) -> Any:
    """``enum[name]`` of a torchvision weights enum, or a ``ModelError`` that lists the choices."""
    try:
        return enum[name]
    except KeyError:
        raise ModelError(
            f"{arch} has no pretrained weights {name!r}; choose one of {', '.join(m.name for m in enum)}"
        ) from None
