"""A stop request, set when the process is asked to end (Ctrl-C, SIGTERM): long loops check it
between units of work (a batch of clips, a training step), so a run ends within seconds, with what
it finished kept whole and nothing half-written."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from actionrec.errors import Interrupted, Terminated

STOP = threading.Event()
_asked: list[int] = []  # the signals received, in order


def reraise_stop() -> None:
    """In the main thread, after code that may have swallowed the unwinding (a flow engine that turns
    it into a state): unwind again the way the signal asked."""
    if _asked:
        raise Terminated if _asked[-1] == signal.SIGTERM else KeyboardInterrupt


def check_stop() -> None:
    """Raise ``Interrupted`` once a stop was requested."""
    if STOP.is_set():
        raise Interrupted("stopped on request (Ctrl-C or SIGTERM); what was finished is kept, a rerun takes the rest")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    STOP.set()  # loops in other threads stop between units of work
    _asked.append(signum)
    if signum == signal.SIGTERM:
        raise Terminated
    raise KeyboardInterrupt


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """For the block (in the main thread): Ctrl-C and SIGTERM set ``STOP`` and unwind the main thread
    (``KeyboardInterrupt``, ``Terminated``), so every ``finally`` runs: leases released, servers and
    worker processes stopped."""
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
