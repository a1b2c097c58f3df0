"""The temporary Prefect server a command-line run uses when no ``PREFECT_API_URL`` is set.

Prefect would start one itself, in this process's group: a terminal's Ctrl-C then killed it along
with the run, and the run spent minutes retrying to report its end to a dead server; SIGTERM left
it running. This one runs in a session of its own (a Ctrl-C reaches the run only), lives until the
run has said how it ended, and is stopped on every way out. It is the same server Prefect starts
(uvicorn with Prefect's app factory, no UI).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from actionrec.errors import StorageUnavailableError
from actionrec.stopping import stop_on_signals

STARTUP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        spec = importlib.util.find_spec("prefect")  # without importing it: settings are read at import
        assert spec is not None and spec.origin is not None
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise StorageUnavailableError(f"the temporary Prefect server did not start within {STARTUP_TIMEOUT_S:g} s "
                                      "(set PREFECT_API_URL to use a running one)")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def prefect_api() -> Iterator[None]:
    """For the block: a Prefect API (``PREFECT_API_URL``, or a temporary server of our own, stopped
    on every way out), and Ctrl-C / SIGTERM turned into a prompt, orderly stop. Call it before
    Prefect is imported (Prefect reads ``PREFECT_API_URL`` then)."""
    with stop_on_signals():
        server = None
        try:
            if not os.environ.get("PREFECT_API_URL"):
                server = TemporaryServer()
                server.start()
                os.environ["PREFECT_API_URL"] = server.api_url
            yield
        finally:
            if server is not None:
                _drain_prefect_workers()
                os.environ.pop("PREFECT_API_URL", None)
                server.stop()


def _drain_prefect_workers(timeout_s: float = 10.0) -> None:
    """Let Prefect's background log and event workers send what they hold while the server still
    listens (left for exit time, they would retry against a stopped server for a minute)."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout_s, at_exit=False)
        except Exception:  # noqa: BLE001 - best effort: the run's outcome is already recorded
            pass
