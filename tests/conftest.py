"""Shared fixtures: tiny indexed videos made with PyAV, a small trained-from-scratch model."""

from __future__ import annotations

import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Converted models (the OpenVINO cache) go to a fresh folder per session, never to ~/.cache.
os.environ.setdefault("ACTIONREC_CACHE_DIR", tempfile.mkdtemp(prefix="actionrec-test-cache-"))
sys.path.insert(0, str(Path(__file__).parent))

from videos import write_audio_only, write_indexed  # noqa: E402

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per container/codec situation the reader must handle, plus broken inputs."""
    d = tmp_path_factory.mktemp("media")
    m: dict[str, Path] = {}
    m["mp4"] = write_indexed(d / "gop12.mp4", 100, fps=25, gop=12, bframes=2)
    m["mp4_one_key"] = write_indexed(d / "onekey.mp4", 100, fps=25, gop=1000, bframes=3)
    m["avi"] = write_indexed(d / "mpeg4.avi", 100, fps=25, codec="mpeg4", gop=12, bframes=2, fmt="avi")
    m["mkv"] = write_indexed(d / "mpeg4.mkv", 100, fps=25, codec="mpeg4", gop=12, bframes=0, fmt="matroska")
    # Variable frame rate: frame i shown at VFR_PTS[i] milliseconds.
    m["vfr"] = write_indexed(d / "vfr.mp4", len(VFR_PTS_MS), fps=25, gop=5, bframes=0, pts=VFR_PTS_MS,
                             time_base=Fraction(1, 1000))
    m["short"] = write_indexed(d / "short.mp4", 5, fps=25, gop=12, bframes=0)
    m["single"] = write_indexed(d / "single.mp4", 1, fps=25, gop=12, bframes=0)
    faststart = write_indexed(d / "faststart.mp4", 100, fps=25, gop=10, bframes=0,
                              container_options={"movflags": "+faststart"})
    data = faststart.read_bytes()
    m["truncated_faststart"] = d / "truncated_faststart.mp4"
    m["truncated_faststart"].write_bytes(data[: len(data) // 2])
    m["truncated_no_moov"] = d / "truncated_no_moov.mp4"
    m["truncated_no_moov"].write_bytes(m["mp4"].read_bytes()[: m["mp4"].stat().st_size // 2])
    m["empty"] = d / "empty.mp4"
    m["empty"].write_bytes(b"")
    m["text"] = d / "notes.mp4"
    m["text"].write_text("this is a text file, not a video\n" * 20)
    m["png"] = d / "picture.mp4"
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(m["png"], format="PNG")
    m["audio_only"] = write_audio_only(d / "audio.m4a")
    return m


VFR_PTS_MS = [0, 40, 80, 200, 210, 220, 600, 640, 1000, 1033, 1066, 1500]


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"{SHARED_VIDEOS} is absent (real clips live in ../shared/videos beside the project)")
    return SHARED_VIDEOS


SECRET = "s3cr3t-Never-Logged-7f1c9e2a"  # the test endpoint's secret key: must never show up anywhere


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect server for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint on 127.0.0.1 (moto's server mode), reached through boto3."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="AKIATESTKEYID0000000", AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_DEFAULT_REGION="us-east-1")
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
