"""Fetching pretrained weights, only when asked (``actionrec models pull``); run time never downloads.

- ``torchvision:`` or ``pytorchvideo:<arch>[:<weights>]``: the file named in the architecture's ``urls`` goes where run
  time looks for it (``weights.weights_cache_path``: ``$TORCH_HOME/hub/checkpoints/<name>``). It is
  streamed into a temporary file in that folder (``io.atomic``), its sha256 checked against the
  prefix in its published name, and only then renamed into place: an error, Ctrl-C or SIGTERM
  leaves no partial file, and the partial left by a killed process has a temporary name that is
  never read as weights (and is removed by a later pull once an hour old).
- ``hf:<hub id>``: a snapshot in the standard Hugging Face cache (``huggingface_hub.snapshot_download``).

A mirror (``--mirror`` or ``$ACTIONREC_WEIGHTS_MIRROR``) replaces scheme and host: the file's URL
path is appended to the mirror's base. Credentials in a mirror URL are sent (HTTP basic auth) but
never printed: every message shows the URL with them masked.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from actionrec.errors import ConfigError, DownloadError, StorageError, WeightsCorruptError
from actionrec.io import atomic
from actionrec.models import weights as wt
from actionrec.models.refs import ModelRef, parse_model_ref

MIRROR_ENV = "ACTIONREC_WEIGHTS_MIRROR"
TIMEOUT_S = 30.0
_CHUNK = 1 << 20
_STALE_PARTIAL_S = 3600.0
_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


@dataclass(frozen=True)
class Pulled:
    """What a pull did: ``status`` ``downloaded`` or ``cached`` (already there and verified)."""

    ref: str
    path: str
    status: str
    bytes: int
    sha256: str | None = None
    verified: bool = False
    source: str = ""  # where it came from, credentials masked


def redact(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) with every URL's user:password replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1***@", text)


def mirrored(url: str, mirror: str | None) -> str:
    """The URL to fetch: ``url``, or its path appended to the mirror's base."""
    if not mirror:
        return url
    return check_mirror(mirror).rstrip("/") + urlsplit(url).path


def check_mirror(mirror: str) -> str:
    base = urlsplit(mirror)
    if base.scheme not in ("http", "https") or not base.hostname:
        raise ConfigError(f"mirror must be an http(s):// URL, got {redact(mirror)!r}")
    return mirror


def _request(url: str) -> urllib.request.Request:
    """A GET request, with the URL's user:password moved into a basic-auth header."""
    parts = urlsplit(url)
    headers = {"User-Agent": "actionrec-models-pull"}
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return urllib.request.Request(url, headers=headers)


def resolve_published(ref: str | ModelRef) -> tuple[str, str, str, str]:
    """(publisher, arch, weights, url) for ``torchvision:`` or ``pytorchvideo:<arch>[:<weights>]``;
    ``ConfigError`` when there is no such architecture, weight set or published file."""
    from actionrec.models.architectures import get_architecture

    r = ref if isinstance(ref, ModelRef) else parse_model_ref(ref)
    if r.kind not in ("torchvision", "pytorchvideo"):
        raise ConfigError(f"models pull takes torchvision: or pytorchvideo:<arch>[:<weights>], or hf:<hub id>; "
                          f"got {r.text!r}")
    try:
        arch = get_architecture(r.name)
    except Exception as e:
        raise ConfigError(str(e)) from e
    if not arch.weights:
        raise ConfigError(f"{arch.name} has no published weights to pull")
    if arch.publisher != r.kind:
        raise ConfigError(f"{arch.name}'s weights are published by {arch.publisher}: use {arch.publisher}:{arch.name}")
    weights = r.version or arch.pretrained[0]
    if weights not in arch.weights:
        raise ConfigError(f"{arch.name} has no published weights {weights!r}; choose one of "
                          f"{', '.join(arch.pretrained)}")
    if weights not in arch.urls:
        raise ConfigError(f"{arch.name}:{weights} names no file to download (no url in its registration)")
    return arch.publisher, arch.name, weights, arch.urls[weights]


def pull(ref: str, *, mirror: str | None = None, progress: bool = False) -> Pulled:
    """Fetch the weights a reference names into the local cache (see the module docstring)."""
    r = parse_model_ref(ref)
    if r.kind == "hf":  # a hub mirror is an endpoint of its own: --mirror, else $HF_ENDPOINT
        if r.location:
            raise ConfigError(f"{ref} is a local folder: there is nothing to pull")
        return _pull_hf(r.name, mirror or os.environ.get("HF_ENDPOINT") or None, progress)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    publisher, arch, weights, url = resolve_published(r)
    target = wt.weights_cache_path(url)
    source = mirrored(url, mirror)
    canonical = f"{publisher}:{arch}:{weights}"
    if target.exists():
        with suppress(WeightsCorruptError):
            wt.verify_cached(target, url)
            return Pulled(canonical, str(target), "cached", target.stat().st_size, None,
                          wt.published_hash(target.name) is not None, redact(source))
    size, digest = download(source, target, progress=progress)
    return Pulled(canonical, str(target), "downloaded", size, digest, wt.published_hash(target.name) is not None,
                  redact(source))


def download(url: str, target: Path, *, progress: bool = False,
             on_chunk: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Stream ``url`` into ``target`` whole or not at all, refusing bytes whose sha256 disagrees with
    the prefix in ``target``'s name; returns (bytes, sha256). ``on_chunk(bytes so far)`` runs after
    each chunk (tests interrupt there)."""
    from tqdm import tqdm

    shown = redact(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_partials(target)
    h = hashlib.sha256()
    done = 0
    try:
        with atomic.atomic_path(target) as tmp:
            with urllib.request.urlopen(_request(url), timeout=TIMEOUT_S) as resp, open(tmp, "xb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name,
                          disable=not progress, leave=False) as bar:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        done += len(chunk)
                        bar.update(len(chunk))
                        if on_chunk is not None:
                            on_chunk(done)
            if total is not None and done != total:
                raise DownloadError(f"download of {shown} was cut short: {done} of {total} bytes; nothing kept, "
                                    "try again")
            digest = h.hexdigest()
            if not wt.check_digest(target.name, digest):
                raise WeightsCorruptError(
                    f"{shown} is not the published file: its sha256 starts {digest[:12]}, its name says "
                    f"{wt.published_hash(target.name)}; refused and deleted (check the mirror)")
    except urllib.error.HTTPError as e:
        kind = DownloadError if e.code >= 500 or e.code in (408, 429) else StorageError
        raise kind(f"cannot download {shown}: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"cannot reach {shown}: {e.reason}") from e
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(f"download of {shown} failed: {type(e).__name__}: {redact(str(e))}") from e
    wt.remember_verified(target, digest)
    return done, digest


def _sweep_partials(target: Path) -> None:
    """Remove this file's partial downloads left by killed processes (an hour old: not in progress)."""
    now = time.time()
    for p in target.parent.glob(f".{target.name}.*{atomic.TEMP_SUFFIX}"):
        with suppress(OSError):
            if now - p.stat().st_mtime > _STALE_PARTIAL_S:
                p.unlink()


def _pull_hf(repo_id: str, mirror: str | None, progress: bool) -> Pulled:
    """A Hugging Face snapshot into the standard hub cache; the mirror is its endpoint."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars

    if not progress:
        disable_progress_bars()

    endpoint = check_mirror(mirror).rstrip("/") if mirror else None
    shown = redact(endpoint or "https://huggingface.co")
    try:
        folder = snapshot_download(repo_id, endpoint=endpoint)
    except Exception as e:  # noqa: BLE001 - the hub raises many kinds (HTTP, offline, not found)
        raise DownloadError(f"cannot fetch {repo_id} from {shown}: {_first_line(e)}") from e
    size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    return Pulled(f"hf:{repo_id}", str(folder), "downloaded", size, None, False, shown)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return redact(f"{type(e).__name__}: {text[0] if text else ''}"[:300])

