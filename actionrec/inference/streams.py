"""Videos decoded as streams of clips (dense tagging), several at once, merged into one bounded queue.

A dense run of a 2-hour video cannot hand back all its clips at the end as ``DecodePool`` does:
they would not fit in memory. Here each video is a stream (``stream_clips``) that a worker feeds
into a small shared queue while the model works; a full queue stops the decoders, so memory holds
a few batches whatever the videos' length. With the ``process`` backend each video is decoded in
its own process: an FFmpeg crash, or a decoder that makes no progress for ``timeout_s``, costs that
video (a failed result with the reason), never the run.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from actionrec.data.clips import DecodedVideo, DenseClip
from actionrec.inference.decode_pool import CRASHED, _ignore_interrupts, _s3_env, _with_env, decoder_backend

Item = DenseClip | DecodedVideo
_POLL_S = 0.2


def _stream_worker(env: dict[str, str], fn: Callable[..., Iterator[Item]], uri: str, args: tuple[Any, ...],
                   out: Any) -> None:
    """In a child process: every item of one video's stream into ``out``."""
    _ignore_interrupts()
    for item in _with_env(env, fn, uri, *args):
        out.put(item)


class ClipStreams:
    """Up to ``workers`` videos streamed at once; ``items`` yields ``(slot, uri, item)`` as they come,
    each video's stream ending with its ``DecodedVideo`` (``slot`` is the video's place in the input)."""

    def __init__(self, fn: Callable[..., Iterator[Item]], args: tuple[Any, ...], *, workers: int,
                 backend: str = "thread", timeout_s: float | None = None, buffer: int = 16) -> None:
        backend = decoder_backend(backend, workers, timeout_s)
        self.fn, self.args, self.workers, self.backend = fn, args, workers, backend
        self.timeout_s = timeout_s if backend == "process" else None  # a thread cannot be stopped
        self._queue: queue.Queue[tuple[int, str, Item]] = queue.Queue(maxsize=max(buffer, 1))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ClipStreams:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # the pumps see it within one poll and end their streams (children are killed)
        for t in self._threads:
            t.join()

    def items(self, uris: Iterable[str]) -> Iterator[tuple[int, str, Item]]:
        pending = enumerate(uris)
        running = 0

        def start_next() -> bool:
            nxt = next(pending, None)
            if nxt is None:
                return False
            t = threading.Thread(target=self._pump, args=nxt, name=f"stream-{nxt[0]}", daemon=True)
            self._threads.append(t)
            t.start()
            return True

        while running < self.workers and start_next():
            running += 1
        while running:
            slot, uri, item = self._queue.get()
            yield slot, uri, item
            if isinstance(item, DecodedVideo):  # that stream is over: start the next video
                running -= 1
                self._threads = [t for t in self._threads if t.is_alive()]
                if start_next():
                    running += 1

    def _put(self, entry: tuple[int, str, Item]) -> bool:
        """Into the shared queue, waiting while it is full; False once the streams are stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self, slot: int, uri: str) -> None:
        stream = self._in_process(uri) if self.backend == "process" else self.fn(uri, *self.args)
        try:
            for item in stream:
                if not self._put((slot, uri, item)) or isinstance(item, DecodedVideo):
                    return
        except Exception as e:  # noqa: BLE001 - the stream must end with a result, whatever happened
            self._put((slot, uri, DecodedVideo(uri, None, error=f"unexpected error while decoding: "
                                                                 f"{type(e).__name__}: {e}")))
        finally:
            stream.close()

    def _in_process(self, uri: str) -> Iterator[Item]:
        """One video's stream from a child process: its items, or its crash or stall as the last one."""
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["actionrec.data.clips"])
        out = ctx.Queue(maxsize=4)
        child = ctx.Process(target=_stream_worker, args=(_s3_env(), self.fn, uri, self.args, out), daemon=True)
        child.start()
        waited = 0.0
        try:
            while not self._stop.is_set():
                try:
                    item = out.get(timeout=_POLL_S)
                except queue.Empty:
                    if not child.is_alive():
                        try:  # what it sent just before it ended
                            item = out.get(timeout=_POLL_S)
                        except queue.Empty:
                            yield DecodedVideo(uri, None, error=CRASHED)
                            return
                    else:
                        waited += _POLL_S
                        if self.timeout_s is not None and waited >= self.timeout_s:
                            yield DecodedVideo(uri, None, error=f"decoding made no progress for {self.timeout_s:g} s "
                                                                "(the per-video decode limit)")
                            return
                        continue
                waited = 0.0
                yield item
                if isinstance(item, DecodedVideo):
                    return
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            out.close()
            out.cancel_join_thread()
