"""A lease on a lake: one tag run at a time, on a local folder or on S3.

``<lake>/_lease/<job>.json`` says who holds the lake until when. It is taken and renewed by
compare-and-swap (a lock file locally, a conditional PUT on S3), so of two runs that start together
one gets it; the holder renews it from a background thread, so a run that crashed (kill -9, a lost
machine) stops renewing and its lease expires after ``ttl_s``; a run that ends releases it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any

from actionrec.errors import ActionRecError, LakeBusyError
from actionrec.lake.lake import Lake

log = logging.getLogger(__name__)
UTC = timezone.utc


def _now() -> float:
    return time.time()


def _started(pid: int) -> float | None:
    """When process ``pid`` started (telling a live holder from a new process that reuses its pid)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _held(record: dict[str, Any]) -> bool:
    """A lease that is held: an owner, not expired, and, when the holder ran on this machine, its
    process still alive (a run killed here frees the lake at once, not after its ttl)."""
    if not record.get("owner") or record.get("expires_at", 0) <= _now():
        return False
    if record.get("host") == socket.gethostname() and record.get("pid") is not None:
        return _started(int(record["pid"])) == record.get("pid_started")
    return True


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


class Lease:
    """Hold ``job``'s lease on a lake for the ``with`` block; see the module docstring."""

    def __init__(self, lake: str | os.PathLike, job: str, owner: str, *, ttl_s: float, wait_s: float = 0.0,
                 poll_s: float = 2.0) -> None:
        self.lake = Lake(lake)
        self.rel = f"_lease/{job}.json"
        self.owner = f"{owner} on {socket.gethostname()} pid {os.getpid()}"
        self.process = {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": _started(os.getpid())}
        self.ttl_s, self.wait_s, self.poll_s = ttl_s, wait_s, poll_s
        self._mine: bytes | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False  # set when a renewal found the lease taken (this run was too slow to renew)

    def _record(self, expires: float) -> bytes:
        return json.dumps({"owner": self.owner, "acquired_at": _iso(_now()), "expires_at": expires,
                           "expires": _iso(expires), **self.process}).encode()

    def holder(self) -> dict[str, Any] | None:
        """The current lease, when it is held and not expired."""
        data = self.lake.store.read_bytes(self.rel)
        if not data:
            return None
        record = json.loads(data)
        return record if _held(record) else None

    def acquire(self) -> None:
        deadline = _now() + self.wait_s
        while True:
            current = self.lake.store.read_bytes(self.rel)
            record = json.loads(current) if current else {}
            if not _held(record):
                mine = self._record(_now() + self.ttl_s)
                if self.lake.store.compare_and_swap(self.rel, current, mine):
                    self._mine = mine
                    if record.get("owner"):
                        log.warning("took over the expired lease of %s on %s", record["owner"], self.lake.root)
                    return
                continue  # another run changed it in between: look again
            if _now() >= deadline:
                raise LakeBusyError(f"lake {self.lake.root} is being tagged by {record['owner']} (lease until "
                                    f"{record.get('expires', '?')}); rerun later, or wait with --lease-wait")
            time.sleep(min(self.poll_s, max(deadline - _now(), 0.05)))

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            mine = self._record(_now() + self.ttl_s)
            try:
                if self.lake.store.compare_and_swap(self.rel, self._mine, mine):
                    self._mine = mine
                    continue
            except ActionRecError as e:  # a storage hiccup: the next beat tries again
                log.warning("could not renew the lease on %s: %s", self.lake.root, e)
                continue
            self.lost = True
            log.error("the lease on %s was taken by another run while this one held it", self.lake.root)
            return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._mine is not None:
            released = json.dumps({"owner": None, "released_at": _iso(_now()), "expires_at": 0}).encode()
            try:
                self.lake.store.compare_and_swap(self.rel, self._mine, released)
            except ActionRecError as e:  # it expires anyway
                log.warning("could not release the lease on %s: %s", self.lake.root, e)
            self._mine = None

    def __enter__(self) -> Lease:
        self.acquire()
        self._thread = threading.Thread(target=self._renew, name="lake-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
