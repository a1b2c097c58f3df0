"""Batched inference across videos: a decode pool feeds fixed-size batches of clips to the model.

Decoding runs in worker processes (or threads), so while the model works on one batch the next
videos are being read. Clips from different videos share a batch; a video's result is complete
once all its clips are scored (softmax averaged over clips). A video that cannot be read becomes a
``failed`` result with the reason; it never stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from actionrec.data.clips import DecodedVideo, decode_clips
from actionrec.data.transforms import normalize_ncthw
from actionrec.errors import ConfigError, ModelError
from actionrec.inference.decode_pool import DecodePool
from actionrec.inference.results import ClipPrediction, VideoPrediction, top_k_labels
from actionrec.inference.settings import DEFAULTS, InferenceSettings
from actionrec.models.checkpoint import LoadedModel
from actionrec.stopping import check_stop

NON_FINITE = "the model produced non-finite scores (NaN or inf) for this video"


def check_device(device: str | None) -> None:
    """A device this machine has (``InferenceSettings`` checked the spelling)."""
    if device is None or device == "cpu":
        return
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            raise ConfigError(f"device {device!r} was asked for, but this machine has "
                              f"{count or 'no'} CUDA device{'s' if count != 1 else ''}")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' was asked for, but this machine has no Apple GPU")


def _to_channels_last_3d(module: torch.nn.Module) -> bool:
    """Put the 3-D convolutions' weights in channels_last_3d; False when there are none.

    ``module.to(memory_format=channels_last_3d)`` would fail on a network with 2-D convolutions
    (TSN-style models), whose 4-D weights have no 3-D layout.
    """
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv3d)]
    for conv in convs:
        conv.to(memory_format=torch.channels_last_3d)
    return bool(convs)


class Predictor:
    """Runs a model over many videos with decoding overlapped and clips batched across videos."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        device: str | None = DEFAULTS.device,
        batch_size: int = DEFAULTS.batch_size,
        decode_workers: int = DEFAULTS.decode_workers,
        decode_backend: str = DEFAULTS.decode_backend,
        decode_timeout_s: float | None = DEFAULTS.decode_timeout_s,
        torch_compile: bool = DEFAULTS.torch_compile,
        amp: bool = True,
        channels_last: bool | None = None,
    ) -> None:
        """Settings as in ``InferenceSettings`` (validated there). ``torch_compile``: run the model
        through ``torch.compile`` with static shapes (a short last batch is padded, so one graph
        serves the run) and, unless told otherwise, channels_last_3d (see README, Performance)."""
        InferenceSettings(batch_size=batch_size, decode_workers=decode_workers, device=device,
                          decode_backend=decode_backend, decode_timeout_s=decode_timeout_s)
        check_device(device)
        self.model = model
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.decode_backend = decode_backend
        self.decode_timeout_s = decode_timeout_s  # enforced with process workers only
        cuda = self.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda and amp else None
        self.module = model.module.to(self.device).eval()
        wanted = (cuda or torch_compile) if channels_last is None else channels_last
        self.channels_last = wanted and _to_channels_last_3d(self.module)
        self.torch_compile = torch_compile
        self.model_seconds = 0.0  # time spent in run_batch, device sync included (benchmarks read it)
        self._finite_clips = 0
        self._forward = torch.compile(self.module, dynamic=False) if torch_compile else self.module

    def run_batch(self, batch_nthwc: torch.Tensor | np.ndarray) -> np.ndarray:
        """uint8 clips ``[N, T, H, W, 3]`` -> class probabilities ``[N, K]`` (float32). The float
        conversion and normalisation happen on the model's device."""
        if isinstance(batch_nthwc, np.ndarray):
            batch_nthwc = torch.from_numpy(batch_nthwc)
        cuda = self.device.type == "cuda"
        n = len(batch_nthwc)
        if self.torch_compile and n < self.batch_size:  # one static shape: no recompilation
            batch_nthwc = torch.cat([batch_nthwc, batch_nthwc.new_zeros((self.batch_size - n, *batch_nthwc.shape[1:]))])
        if cuda:
            batch_nthwc = batch_nthwc.pin_memory()
        x = normalize_ncthw(batch_nthwc.to(self.device, non_blocking=cuda), self.model.spec)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        autocast = torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with torch.inference_mode(), autocast:
            logits = self._forward(x)[:n]
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    def predict(self, uris: Iterable[str], *, top_k: int = DEFAULTS.top_k, clips: int = DEFAULTS.clips,
                time_limit_s: float | None = None) -> Iterator[VideoPrediction]:
        """Yield one result per uri as soon as it is complete (not necessarily in input order).
        Past ``time_limit_s`` (checked between batches) it stops with ``TimeoutError``."""
        InferenceSettings(top_k=top_k, clips=clips)
        deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None
        classes = self.model.classes
        queue: list[tuple[int, int, np.ndarray]] = []  # (video slot, clip index, clip_thwc uint8)
        videos: dict[int, dict[str, Any]] = {}
        next_slot = 0
        pool = DecodePool(decode_clips, (self.model.spec, clips), workers=self.decode_workers,
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
                    videos[slot] = {"decoded": decoded, "probs": [None] * clips, "left": clips, "infer_s": 0.0}
                    queue.extend((slot, i, c) for i, c in enumerate(decoded.clips_nthwc))
                    decoded.clips_nthwc = None  # the queue holds the clips now
                if not queue:
                    continue
                check_stop()
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"stopped after the {time_limit_s:g} s time limit")
                batch, queue = queue[: self.batch_size], queue[self.batch_size :]
                started = time.perf_counter()
                probs = self.run_batch(np.stack([c for _, _, c in batch]))
                finite = np.isfinite(probs).all(axis=1)
                self._check_finite(finite)
                spent = time.perf_counter() - started
                self.model_seconds += spent
                share = spent / len(batch)
                for (slot, i, _), p in zip(batch, probs, strict=True):
                    v = videos[slot]
                    v["probs"][i] = p
                    v["left"] -= 1
                    v["infer_s"] += share
                    if v["left"] == 0:
                        yield self._finish(videos.pop(slot), classes, top_k)

    def self_check(self) -> None:
        """Score one blank clip: a model whose weights give NaN or inf fails here, before any video."""
        spec = self.model.spec
        blank = np.zeros((1, spec.frames_per_clip, spec.crop_size, spec.crop_size, 3), np.uint8)
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
        clip_probs = np.stack(v["probs"])
        if not np.isfinite(clip_probs).all():
            return VideoPrediction(decoded.uri, "failed", NON_FINITE, info=decoded.info, decode_s=decoded.decode_s,
                                   infer_s=v["infer_s"])
        video_probs = clip_probs.mean(axis=0)
        timeline = [
            ClipPrediction(i, s, e, top_k_labels(p, classes, top_k))
            for i, ((s, e), p) in enumerate(zip(decoded.spans, clip_probs, strict=True))
        ]
        return VideoPrediction(
            uri=decoded.uri,
            status="partial" if decoded.partial_reason else "ok",
            error=decoded.partial_reason,
            info=decoded.info,
            num_clips=len(timeline),
            top_k=top_k_labels(video_probs, classes, top_k),
            clips=timeline,
            decode_s=decoded.decode_s,
            infer_s=v["infer_s"],
            probs=video_probs,
        )

    def predict_all(self, uris: Iterable[str], *, top_k: int = DEFAULTS.top_k, clips: int = DEFAULTS.clips,
                    progress: bool = False) -> list[VideoPrediction]:
        """Results in input order (duplicates in ``uris`` each get their own result); ``progress``
        shows a bar (on a terminal)."""
        from tqdm.auto import tqdm

        uris = list(uris)
        by_uri: dict[str, list[VideoPrediction]] = {}
        with tqdm(total=len(uris), desc=f"predict {self.model.name}", unit="video", disable=not progress) as bar:
            for r in self.predict(uris, top_k=top_k, clips=clips):
                by_uri.setdefault(r.uri, []).append(r)
                bar.update(1)
        return [by_uri[u].pop(0) for u in uris]
