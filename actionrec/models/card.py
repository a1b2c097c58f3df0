"""A checkpoint's identity, without loading it (torch-free): its version (a hash of the file),
its card beside it, and the name it goes by."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

UNVERSIONED = "unversioned"  # a model not (yet) saved as a checkpoint: no identity to cache or skip by


def file_version(path: str | os.PathLike) -> str:
    """A model version: the first 12 hex digits of the checkpoint file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def card_path(checkpoint: str | os.PathLike) -> Path:
    """``card.json`` beside ``model.pt``; ``<stem>.card.json`` beside any other checkpoint name."""
    path = Path(checkpoint)
    return path.with_name("card.json") if path.name == "model.pt" else path.with_suffix(".card.json")


def checkpoint_name(checkpoint: str | os.PathLike) -> str:
    """The name a checkpoint file goes by: the one in its card, else its folder's name for a
    ``model.pt`` (the lake's layout, ``<name>/<version>/model.pt`` aside), else the file's stem."""
    path = Path(checkpoint)
    try:
        name = json.loads(card_path(path).read_text()).get("name")
        if isinstance(name, str) and name:
            return name
    except (OSError, ValueError, AttributeError):
        pass
    return path.parent.name if path.name == "model.pt" and path.parent.name else path.stem
