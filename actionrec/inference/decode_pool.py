"""A pool of decode workers: threads (light, in-process) or processes (isolated).

FFmpeg can crash the whole process on a hostile file. With the ``process`` backend a crash kills
one worker, not the run: the pool is rebuilt, and every video that was in flight is decoded again
alone, so the culprit is found and becomes a ``failed`` result while the others still succeed.
A video that decodes for longer than ``timeout_s`` is stopped the same way and fails with that reason.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from actionrec.data.clips import DecodedVideo
from actionrec.errors import ConfigError
from actionrec.inference.settings import DECODE_BACKENDS
from actionrec.io import s3
from actionrec.options import check_positive_seconds

log = logging.getLogger(__name__)
_applied_env: dict[str, str] = {}


def _with_env(env: dict[str, str], fn: Callable[..., DecodedVideo], uri: str, *args: Any) -> DecodedVideo:
    """Run ``fn`` in a worker under the caller's current S3 settings (a worker process may have been
    started, by the forkserver, before they changed)."""
    global _applied_env
    if env != _applied_env:
        for key in set(_applied_env) - set(env):
            os.environ.pop(key, None)
        os.environ.update(env)
        _applied_env = dict(env)
        s3.reset_clients()  # no boto3 import: the module loads it on first use
    return fn(uri, *args)


def _s3_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


def _ignore_interrupts() -> None:
    """Decode workers leave Ctrl-C to the main process, which stops them (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _KillablePool(cf.ProcessPoolExecutor):
    """A process pool that can be stopped now, stuck workers included (``shutdown`` alone waits for
    them). Python 3.14 has ``kill_workers``; before that this is the one place that reads the pool's
    worker table."""

    def kill_workers(self) -> None:
        parent = getattr(super(), "kill_workers", None)
        if parent is not None:  # pragma: no cover - Python >= 3.14
            parent()
        else:
            for proc in list((self._processes or {}).values()):
                proc.kill()
        self.shutdown(wait=False, cancel_futures=True)


CRASHED = "the decoder crashed on this file (its worker process died); the file is probably corrupt or hostile"


def decoder_backend(backend: str, workers: int, timeout_s: float | None) -> str:
    """Check a decoder setup and say which backend it gets: ``thread`` instead of ``process`` in a
    daemonic process, which cannot start children (``DecodePool`` and the dense ``ClipStreams``)."""
    DecodePool.check_backend(backend)
    if timeout_s is not None:
        check_positive_seconds("DecodePool", "timeout_s", timeout_s)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"DecodePool.workers must be an integer >= 1, got {workers!r}")
    if backend == "process" and multiprocessing.current_process().daemon:
        # e.g. a Dask worker (daemonic unless distributed.worker.daemon is False): no children allowed
        log.warning("decode workers run as threads: this process is daemonic and cannot start processes "
                    "(for Dask, set distributed.worker.daemon: false to keep crash isolation)")
        return "thread"
    return backend


class DecodePool:
    def __init__(self, fn: Callable[..., DecodedVideo], args: tuple[Any, ...], *, workers: int,
                 backend: str = "thread", timeout_s: float | None = None) -> None:
        backend = decoder_backend(backend, workers, timeout_s)
        self.fn, self.args, self.workers, self.backend = fn, args, workers, backend
        # A thread cannot be stopped: the time limit needs worker processes.
        self.timeout_s = timeout_s if backend == "process" else None
        self._executor: cf.Executor | None = None
        self.crashes = 0
        self.timeouts = 0

    @staticmethod
    def check_backend(backend: str) -> None:
        if backend not in DECODE_BACKENDS:
            raise ConfigError(f"decode_backend must be one of {DECODE_BACKENDS}, got {backend!r}")

    def _new_executor(self, workers: int) -> cf.Executor:
        if self.backend == "thread":
            return cf.ThreadPoolExecutor(workers, thread_name_prefix="decode")
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["actionrec.data.clips"])
        kwargs: dict[str, Any] = {"max_tasks_per_child": 500} if sys.version_info >= (3, 11) else {}
        return _KillablePool(workers, mp_context=ctx, initializer=_ignore_interrupts, **kwargs)

    def __enter__(self) -> DecodePool:
        self._executor = self._new_executor(self.workers)
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._executor is not None:
            if exc_type is None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            else:  # stopping on an error or a stop request: do not wait for the decodes in flight
                self._kill(self._executor)
            self._executor = None

    @staticmethod
    def _kill(executor: cf.Executor) -> None:
        if isinstance(executor, _KillablePool):
            executor.kill_workers()
        else:
            executor.shutdown(wait=False, cancel_futures=True)

    def _too_slow(self, uri: str) -> DecodedVideo:
        self.timeouts += 1
        return DecodedVideo(uri, None, error=f"decoding took longer than the {self.timeout_s:g} s limit per video")

    def _isolated(self, uri: str) -> DecodedVideo:
        """Decode one suspect alone in a fresh process: its own result, or the crash as its reason."""
        solo = self._new_executor(1)
        try:
            return solo.submit(_with_env, _s3_env(), self.fn, uri, *self.args).result(timeout=self.timeout_s)
        except BrokenProcessPool:
            self.crashes += 1
            return DecodedVideo(uri, None, error=CRASHED)
        except cf.TimeoutError:
            return self._too_slow(uri)
        finally:
            self._kill(solo)

    def map_unordered(self, uris: Iterable[str], *, prefetch: int) -> Iterator[DecodedVideo]:
        """Results as they complete, with at most ``prefetch`` videos in flight (bounded memory)."""
        assert self._executor is not None, "use DecodePool as a context manager"
        pending = iter(uris)
        in_flight: dict[cf.Future[DecodedVideo], str] = {}

        deadlines: dict[cf.Future[DecodedVideo], float] = {}
        env = _s3_env()
        # With a time limit, no more videos in flight than workers: each starts when submitted.
        limit = self.workers if self.timeout_s is not None else max(prefetch, 1)

        def refill() -> None:
            while len(in_flight) < limit:
                uri = next(pending, None)
                if uri is None:
                    return
                fut = (self._executor.submit(_with_env, env, self.fn, uri, *self.args) if self.backend == "process"
                       else self._executor.submit(self.fn, uri, *self.args))
                in_flight[fut] = uri
                if self.timeout_s is not None:
                    deadlines[fut] = time.monotonic() + self.timeout_s

        refill()
        while in_flight:
            wait_s = None
            if self.timeout_s is not None:
                wait_s = max(0.0, min(deadlines[f] for f in in_flight) - time.monotonic())
            done, _ = cf.wait(in_flight, timeout=wait_s, return_when=cf.FIRST_COMPLETED)
            if not done:  # a video ran past its limit: it fails, the others start again elsewhere
                now = time.monotonic()
                late = [f for f in in_flight if deadlines[f] <= now]
                innocent = [uri for f, uri in in_flight.items() if f not in late]
                for f in late:
                    yield self._too_slow(in_flight[f])
                in_flight.clear()
                self._kill(self._executor)
                self._executor = self._new_executor(self.workers)
                pending = itertools.chain(innocent, pending)
                refill()
                continue
            broken = False
            for fut in done:
                uri = in_flight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    in_flight[fut] = uri  # still a suspect
            if broken:
                suspects = []
                for fut, uri in list(in_flight.items()):
                    if fut.done() and fut.exception() is None:
                        yield fut.result()
                    else:
                        suspects.append(uri)
                in_flight.clear()
                self._kill(self._executor)
                self._executor = self._new_executor(self.workers)
                for uri in suspects:
                    yield self._isolated(uri)
            refill()
