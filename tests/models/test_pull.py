"""``actionrec models pull``: weights come from a real HTTP server on 127.0.0.1 (the mirror), land where
run time looks, are checked against the hash in their name, and never leave a partial file."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from torch import nn

from actionrec.data.spec import InputSpec
from actionrec.errors import DownloadError, Terminated, WeightsCorruptError, WeightsNotFoundError
from actionrec.models import build_model, register
from actionrec.models import weights as wt
from actionrec.models.download import download, pull, redact
from actionrec.models.registry import registered_names
from deployments.cli import main

ARCH = "pulltest_tiny"
SPEC = InputSpec(frames_per_clip=4, sampling="fps", sample_fps=8.0, short_side=16, crop_size=16)
PASSWORD = "pw-Never-Printed-91c"


class _Tiny(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3, 4)))


def _published_bytes() -> bytes:
    torch.manual_seed(7)
    buf = io.BytesIO()
    torch.save(_Tiny(5).state_dict(), buf)
    return buf.getvalue()


PUBLISHED = _published_bytes()
NAME = f"{ARCH}-{hashlib.sha256(PUBLISHED).hexdigest()[:8]}.pth"
URL = f"https://weights.example.invalid/models/{NAME}"
REF = f"torchvision:{ARCH}:TEST_V1"


def _build(num_classes: int, pretrained: str | None = None) -> nn.Module:
    net = _Tiny(5 if pretrained else num_classes)
    if pretrained:
        net.load_state_dict(wt.load_cached_weights(URL))
    return net


if ARCH not in registered_names():  # the registry refuses duplicates: once per session
    register(ARCH, default_spec=SPEC, head="fc", weights={"TEST_V1": SPEC}, urls={"TEST_V1": URL})(_build)


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut: set[str] = set()  # paths sent half-way, then the connection is closed
    auth: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.auth.append(self.headers.get("Authorization"))
        path = self.path.split("/", 2)[2] if self.path.startswith("/base/") else self.path
        data = self.files.get("/" + path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if "/" + path.lstrip("/") in self.cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/base"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch, server):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("ACTIONREC_WEIGHTS_MIRROR", raising=False)
    _Handler.files = {f"/models/{NAME}": PUBLISHED}
    _Handler.cut = set()
    _Handler.auth = []
    return wt.weights_cache_path(URL).parent


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_pull_through_mirror_lands_where_run_time_looks(cache, server, monkeypatch):
    with pytest.raises(WeightsNotFoundError, match=f"actionrec models pull {REF}"):
        build_model(ARCH, ["a", "b"], pretrained="TEST_V1")
    monkeypatch.setenv("ACTIONREC_WEIGHTS_MIRROR", server)
    done = pull(REF)
    assert done.status == "downloaded" and done.verified and done.bytes == len(PUBLISHED)
    assert (cache / NAME).read_bytes() == PUBLISHED and done.path == str(wt.weights_cache_path(URL))
    model = build_model(ARCH, [str(i) for i in range(5)], pretrained="TEST_V1").module
    torch.manual_seed(7)
    assert torch.equal(model.fc.weight, _Tiny(5).fc.weight)
    # Verified once: a later load trusts the sidecar while the file is unchanged (no re-hash).
    monkeypatch.setattr(wt, "file_sha256", lambda path: pytest.fail("re-hashed an unchanged file"))
    build_model(ARCH, ["a"] * 5, pretrained="TEST_V1")
    assert pull(REF).status == "cached" and len(_Handler.auth) == 1


def test_wrong_hash_is_refused_and_nothing_kept(cache, server):
    _Handler.files = {f"/models/{NAME}": PUBLISHED[:-8] + b"tampered"}
    with pytest.raises(WeightsCorruptError, match="not the published file"):
        pull(REF, mirror=server)
    assert _leftovers(cache) == []


def test_cut_short_download_leaves_no_partial(cache, server):
    _Handler.cut = {f"/models/{NAME}"}
    with pytest.raises(DownloadError, match="cut short"):
        pull(REF, mirror=server)
    assert _leftovers(cache) == []


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Terminated])
def test_interrupted_download_leaves_no_partial(cache, server, stop):
    target = wt.weights_cache_path(URL)

    def interrupt(done: int) -> None:
        assert [p for p in _leftovers(cache) if p.endswith(".tmp")]  # the partial exists mid-way...
        raise stop

    with pytest.raises(stop):
        download(f"{server}/models/{NAME}", target, on_chunk=interrupt)
    assert _leftovers(cache) == []  # ...and is gone


def test_stale_partial_is_never_read_and_is_swept(cache, server):
    cache.mkdir(parents=True)
    stale = cache / f".{NAME}.0123456789ab.tmp"
    stale.write_bytes(PUBLISHED)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    with pytest.raises(WeightsNotFoundError):
        build_model(ARCH, ["a"], pretrained="TEST_V1")
    pull(REF, mirror=server)
    assert not stale.exists()


def test_corrupted_cache_file_is_refused_at_load(cache, server):
    pull(REF, mirror=server)
    path = wt.weights_cache_path(URL)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsCorruptError, match=f"`actionrec models pull {REF}`"):
        build_model(ARCH, ["a"], pretrained="TEST_V1")
    done = pull(REF, mirror=server)  # a pull replaces the damaged file
    assert done.status == "downloaded" and path.read_bytes() == PUBLISHED


def test_cli_pull(cache, server, capsys):
    base = server.replace("http://", f"http://mirror-user:{PASSWORD}@")
    assert main(["models", "pull", REF, "--mirror", base, "--json"]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["status"] == "downloaded"
    assert _Handler.auth[-1] and _Handler.auth[-1].startswith("Basic ")  # the credentials were sent...
    assert PASSWORD not in out + err  # ...and never printed
    assert main(["models", "pull", REF, "--mirror", base]) == 0
    assert "already in the cache" in capsys.readouterr().out
    assert main(["models", "pull", "torchvision:nope"]) == 2
    assert main(["models", "pull", "torchvision:r3d_18:NOPE"]) == 2
    assert "KINETICS400_V1" in capsys.readouterr().err


def test_cli_unreachable_mirror(cache, tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for ref in (REF, "hf:example/tiny-video-model"):
        assert main(["models", "pull", ref, "--mirror", dead]) == 3
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and PASSWORD not in err
        assert "127.0.0.1" in err
    assert redact(f"see {dead}/x and https://a:b@h/y") == f"see http://***@127.0.0.1:{port}/x and https://***@h/y"


def test_pytorchvideo_zoo_weights_pull_by_their_publisher(cache, server):
    """``pytorchvideo:<arch>`` pulls the zoo file the architecture names (no hash in a zoo name: it is
    fetched whole, not verified); the wrong publisher's prefix is refused with the right one."""
    from actionrec.errors import ConfigError
    from actionrec.models.architectures import get_architecture

    entry = get_architecture("i3d_r50")
    url = entry.urls[entry.pretrained[0]]
    zoo = url.split("/", 3)[3]
    _Handler.files = {f"/{zoo}": b"zoo-bytes"}
    with pytest.raises(WeightsNotFoundError, match="actionrec models pull pytorchvideo:i3d_r50:"):
        wt.load_cached_weights(url)
    done = pull("pytorchvideo:i3d_r50", mirror=server)
    assert done.status == "downloaded" and not done.verified and done.ref.startswith("pytorchvideo:i3d_r50:")
    assert wt.weights_cache_path(url).read_bytes() == b"zoo-bytes"
    with pytest.raises(ConfigError, match="use pytorchvideo:i3d_r50"):
        pull("torchvision:i3d_r50", mirror=server)
