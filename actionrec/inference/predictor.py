"""Batched inference across videos: a decode pool feeds fixed-size batches of clips to the model.

Decoding runs in worker processes (or threads), so while the model works on one batch the next
videos are being read. Clips from different videos share a batch; a video's result is complete
once all its clips are scored (softmax averaged over clips). A video that cannot be read becomes a
``failed`` result with the reason; it never stops the others. Asked for ``embeddings``, each video
also gets its embedding: the classification head's input averaged over its clips (and crops), then
L2-normalised.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from actionrec.data.clips import DecodedVideo, DenseClip, decode_clips, stream_clips
from actionrec.engines.choice import choose_engine
from actionrec.engines.runners import Runner, open_runner
from actionrec.errors import ConfigError, ModelError
from actionrec.inference.decode_pool import DecodePool
from actionrec.inference.results import ClipPrediction, VideoPrediction, top_k_labels
from actionrec.inference.settings import DEFAULTS, InferenceSettings
from actionrec.inference.streams import ClipStreams
from actionrec.stopping import check_stop

NON_FINITE = "the model produced non-finite scores (NaN or inf) for this video"


class Predictor:
    """Runs a model over many videos with decoding overlapped and clips batched across videos."""

    def __init__(
        self,
        model: Any,
        *,
        device: str | None = DEFAULTS.device,
        batch_size: int = DEFAULTS.batch_size,
        decode_workers: int = DEFAULTS.decode_workers,
        decode_backend: str = DEFAULTS.decode_backend,
        decode_timeout_s: float | None = DEFAULTS.decode_timeout_s,
        torch_compile: bool = DEFAULTS.torch_compile,
        engine: str = DEFAULTS.engine,
        precision: str = DEFAULTS.precision,
        channels_last: bool | None = None,
    ) -> None:
        """``model``: a ``LoadedModel``, a ``PinnedModel`` (loaded only if the engine needs it) or an
        open ``Runner``. Settings as in ``InferenceSettings`` (validated there); ``channels_last``
        overrides the torch engine's layout choice (see README, Performance)."""
        InferenceSettings(batch_size=batch_size, decode_workers=decode_workers, device=device,
                          decode_backend=decode_backend, decode_timeout_s=decode_timeout_s, engine=engine,
                          precision=precision)
        if hasattr(model, "run") and hasattr(model, "choice"):
            self.runner: Runner = model
        else:
            self.runner = open_runner(model, choose_engine(engine, precision, device, torch_compile=torch_compile), batch_size=batch_size,
                                      torch_compile=torch_compile, channels_last=channels_last)
        self.model = self.runner.model
        self.choice = self.runner.choice
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.decode_backend = decode_backend
        self.decode_timeout_s = decode_timeout_s  # enforced with process workers only
        self.model_seconds = 0.0  # time spent in run_batch (benchmarks read it)
        self._finite_clips = 0

    def run_batch(self, batch_nthwc: np.ndarray) -> np.ndarray:
        """uint8 clips ``[N, T, H, W, 3]`` -> class probabilities ``[N, K]`` (float32)."""
        started = time.perf_counter()
        probs = self.runner.run(batch_nthwc)
        self.model_seconds += time.perf_counter() - started
        return probs

    def run_batch_features(self, batch_nthwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 clips -> class probabilities ``[N, K]`` and head-input features ``[N, C]`` (float32)."""
        started = time.perf_counter()
        probs, features = self.runner.run_features(batch_nthwc)
        self.model_seconds += time.perf_counter() - started
        return probs, features

    def predict(self, uris: Iterable[str], *, top_k: int = DEFAULTS.top_k, clips: int = DEFAULTS.clips,
                crops: int = DEFAULTS.crops, time_limit_s: float | None = None,
                embeddings: bool = False, every: float | None = DEFAULTS.every) -> Iterator[VideoPrediction]:
        """Yield one result per uri as soon as it is complete (not necessarily in input order).
        Past ``time_limit_s`` (checked between batches) it stops with ``TimeoutError``. With ``every``,
        a clip every ``every`` seconds across each video (dense) instead of ``clips`` clips. With
        ``embeddings``, each scored video's ``embedding`` is set (see the module docstring)."""
        InferenceSettings(top_k=top_k, clips=clips, crops=crops, every=every)
        if embeddings and not hasattr(self.runner, "run_features"):
            raise ConfigError(f"this runner ({type(self.runner).__name__}) gives no features: no embeddings")
        deadline = (time.monotonic() + time_limit_s, time_limit_s) if time_limit_s is not None else None
        if every is not None:
            yield from self._predict_dense(uris, top_k, crops, every, deadline, embeddings)
            return
        classes = self.model.classes
        queue: list[tuple[int, int, np.ndarray]] = []  # (video slot, clip index, clip_thwc uint8)
        videos: dict[int, dict[str, Any]] = {}
        next_slot = 0
        pool = DecodePool(decode_clips, (self.model.spec, clips, crops), workers=self.decode_workers,
                          backend=self.decode_backend, timeout_s=self.decode_timeout_s)
        with pool:
            decoded_iter = pool.map_unordered(uris, prefetch=self.decode_workers * 2)
            exhausted = False
            while not exhausted or queue:
                while not exhausted and len(queue) < self.batch_size:
                    decoded = next(decoded_iter, None)
                    if decoded is None:
                        exhausted = True
                        break
                    if decoded.clips_nthwc is None:
                        yield VideoPrediction(decoded.uri, "failed", decoded.error, decode_s=decoded.decode_s)
                        continue
                    slot, next_slot = next_slot, next_slot + 1
                    views = clips * crops
                    videos[slot] = {"decoded": decoded, "probs": [None] * views, "left": views, "infer_s": 0.0,
                                    "features": [None] * views if embeddings else None}
                    queue.extend((slot, i, c) for i, c in enumerate(decoded.clips_nthwc))
                    decoded.clips_nthwc = None  # the queue holds the clips now
                if not queue:
                    continue
                batch, queue = queue[: self.batch_size], queue[self.batch_size :]
                probs, features, share = self._score(batch, deadline, embeddings)
                for j, ((slot, i, _), p) in enumerate(zip(batch, probs, strict=True)):
                    v = videos[slot]
                    v["probs"][i] = p
                    if features is not None:
                        v["features"][i] = features[j]
                    v["left"] -= 1
                    v["infer_s"] += share
                    if v["left"] == 0:
                        yield self._finish(videos.pop(slot), classes, top_k)

    def _score(self, batch: list[tuple[int, int, np.ndarray]], deadline: tuple[float, float] | None,
               embeddings: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
        """One batch of queued clips through the model (after a stop request or past the deadline,
        ``(monotonic time, limit in s)``: stop); the probabilities, the head-input features (with
        ``embeddings``, else None) and each clip's share of the time."""
        check_stop()
        if deadline is not None and time.monotonic() > deadline[0]:
            raise TimeoutError(f"stopped after the {deadline[1]:g} s time limit")
        started = time.perf_counter()
        stacked = np.stack([c for _, _, c in batch])
        if embeddings:
            probs, features = self.run_batch_features(stacked)
        else:
            probs, features = self.run_batch(stacked), None
        self._check_finite(np.isfinite(probs).all(axis=1))
        return probs, features, (time.perf_counter() - started) / len(batch)

    def _predict_dense(self, uris: Iterable[str], top_k: int, crops: int, every: float,
                       deadline: tuple[float, float] | None, embeddings: bool) -> Iterator[VideoPrediction]:
        """Dense tagging: each video's clips stream from its decoder into the shared batches (see
        ``ClipStreams``), and each clip's scores are kept as its top-k only, so memory does not grow
        with the videos' length."""
        classes = self.model.classes
        queue: list[tuple[int, int, np.ndarray]] = []  # (video slot, clip index, one view [T, H, W, 3])
        videos: dict[int, _DenseVideo] = {}
        streams = ClipStreams(stream_clips, (self.model.spec, every, crops), workers=self.decode_workers,
                              backend=self.decode_backend, timeout_s=self.decode_timeout_s,
                              buffer=max(2 * self.batch_size, 4))
        with streams:
            items = streams.items(uris)
            exhausted = False
            while not exhausted or queue:
                while not exhausted and len(queue) < self.batch_size:
                    got = next(items, None)
                    if got is None:
                        exhausted = True
                        break
                    slot, uri, item = got
                    v = videos.setdefault(slot, _DenseVideo(uri, crops))
                    if isinstance(item, DenseClip):
                        v.spans[item.index] = item.span
                        queue.extend((slot, item.index, view) for view in item.views_nthwc)
                        continue
                    v.end = item
                    if item.error is not None:  # a failure ends the video: its clips are not scored
                        queue = [q for q in queue if q[0] != slot]
                        del videos[slot]
                        yield VideoPrediction(uri, "failed", item.error, decode_s=item.decode_s)
                    elif v.complete:
                        yield v.result(classes, top_k)
                        del videos[slot]
                if not queue:
                    continue
                batch, queue = queue[: self.batch_size], queue[self.batch_size :]
                probs, features, share = self._score(batch, deadline, embeddings)
                for j, ((slot, i, _), p) in enumerate(zip(batch, probs, strict=True)):
                    v = videos[slot]
                    v.add(i, p, share, classes, top_k, None if features is None else features[j])
                    if v.complete:
                        yield v.result(classes, top_k)
                        del videos[slot]

    def self_check(self) -> None:
        """Score one blank clip: a model whose weights give NaN or inf fails here, before any video."""
        spec = self.model.spec
        blank = np.zeros((1, *spec.clip_shape), np.uint8)
        self._check_finite(np.isfinite(self.run_batch(blank)).all(axis=1))
        self._finite_clips = 0

    def _check_finite(self, finite: np.ndarray) -> None:
        """A model whose first scores are all NaN/inf is broken for every video: fail now, once,
        rather than with one failed row per video."""
        if self._finite_clips == 0 and not finite.any():
            raise ModelError(f"{self.model.name}@{self.model.version} produces non-finite scores (NaN or inf) "
                             "on every clip: its weights are damaged")
        self._finite_clips += int(finite.sum())

    def _finish(self, v: dict[str, Any], classes: list[str], top_k: int) -> VideoPrediction:
        decoded: DecodedVideo = v["decoded"]
        view_probs = np.stack(v["probs"])  # [clips * views, K], each clip's views together
        if not np.isfinite(view_probs).all():
            return VideoPrediction(decoded.uri, "failed", NON_FINITE, info=decoded.info, decode_s=decoded.decode_s,
                                   infer_s=v["infer_s"])
        clip_probs = view_probs.reshape(len(decoded.spans), decoded.views, -1).mean(axis=1)
        timeline = [
            ClipPrediction(i, s, e, top_k_labels(p, classes, top_k))
            for i, ((s, e), p) in enumerate(zip(decoded.spans, clip_probs, strict=True))
        ]
        return _result(decoded, timeline, clip_probs.mean(axis=0), v["infer_s"], classes, top_k,
                       embedding=None if v["features"] is None else video_embedding(np.stack(v["features"])))

    def predict_all(self, uris: Iterable[str], *, top_k: int = DEFAULTS.top_k, clips: int = DEFAULTS.clips,
                    crops: int = DEFAULTS.crops, progress: bool = False, embeddings: bool = False,
                    every: float | None = DEFAULTS.every) -> list[VideoPrediction]:
        """Results in input order (duplicates in ``uris`` each get their own result); ``progress``
        shows a bar (on a terminal); ``embeddings`` as in ``predict``."""
        from tqdm.auto import tqdm

        uris = list(uris)
        by_uri: dict[str, list[VideoPrediction]] = {}
        with tqdm(total=len(uris), desc=f"predict {self.model.name}", unit="video", disable=not progress) as bar:
            for r in self.predict(uris, top_k=top_k, clips=clips, crops=crops, embeddings=embeddings,
                                  every=every):
                by_uri.setdefault(r.uri, []).append(r)
                bar.update(1)
        return [by_uri[u].pop(0) for u in uris]


def video_embedding(view_features: np.ndarray) -> np.ndarray | None:
    """A video's embedding from its clips' (and crops') features ``[V, C]``: their mean, L2-normalised,
    float32. None when it has no direction (all zero) or is not finite: such a video gets no vector."""
    mean = view_features.astype(np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if not np.isfinite(mean).all() or norm == 0.0 or not np.isfinite(norm):
        return None
    return (mean / norm).astype(np.float32)


def _result(decoded: DecodedVideo, timeline: list[ClipPrediction], video_probs: np.ndarray, infer_s: float,
            classes: list[str], top_k: int, embedding: np.ndarray | None = None) -> VideoPrediction:
    """A video's result from its clips' timeline, its averaged probabilities (and its embedding)."""
    return VideoPrediction(
        uri=decoded.uri,
        status="partial" if decoded.partial_reason else "ok",
        error=decoded.partial_reason,
        info=decoded.info,
        num_clips=len(timeline),
        top_k=top_k_labels(video_probs, classes, top_k),
        clips=timeline,
        decode_s=decoded.decode_s,
        infer_s=infer_s,
        probs=video_probs,
        embedding=embedding,
        shots=decoded.shots,
    )


class _DenseVideo:
    """One video of a dense run while it is scored: each clip's views averaged as they come back,
    the clip kept as its top-k, the video's probabilities as a running sum."""

    def __init__(self, uri: str, views: int) -> None:
        self.uri, self.views = uri, views
        self.spans: dict[int, tuple[float, float]] = {}  # clips arrived and not yet fully scored
        self.partial: dict[int, tuple[np.ndarray, int]] = {}  # clip index -> (sum of view probs, views scored)
        self.timeline: list[ClipPrediction] = []
        self.total: np.ndarray | None = None
        self.features: np.ndarray | None = None  # sum of every view's head-input features (embeddings)
        self.infer_s = 0.0
        self.finite = True
        self.end: DecodedVideo | None = None  # the stream's last item, once it came

    def add(self, index: int, probs: np.ndarray, share: float, classes: list[str], top_k: int,
            features: np.ndarray | None = None) -> None:
        self.infer_s += share
        if features is not None:
            f = features.astype(np.float64)
            self.features = f if self.features is None else self.features + f
        summed, n = self.partial.get(index, (0.0, 0))
        summed, n = summed + probs, n + 1
        if n < self.views:
            self.partial[index] = (summed, n)
            return
        self.partial.pop(index, None)
        clip = summed / self.views
        self.finite &= bool(np.isfinite(clip).all())
        start, end = self.spans.pop(index)
        self.timeline.append(ClipPrediction(index, start, end, top_k_labels(clip, classes, top_k)))
        self.total = clip if self.total is None else self.total + clip

    @property
    def complete(self) -> bool:
        return self.end is not None and not self.spans

    def result(self, classes: list[str], top_k: int) -> VideoPrediction:
        end = self.end
        assert end is not None
        if not self.finite:
            return VideoPrediction(self.uri, "failed", NON_FINITE, info=end.info, decode_s=end.decode_s,
                                   infer_s=self.infer_s)
        if self.total is None:
            return VideoPrediction(self.uri, "failed", "no clip could be decoded", info=end.info,
                                   decode_s=end.decode_s)
        self.timeline.sort(key=lambda c: c.clip_index)
        embedding = None if self.features is None else video_embedding(self.features[None])
        return _result(end, self.timeline, (self.total / len(self.timeline)).astype(np.float32), self.infer_s,
                       classes, top_k, embedding)
