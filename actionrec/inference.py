"""Batched inference across videos: a decode pool feeds fixed-size batches of clips to the model.

Decoding runs in worker threads (PyAV and FFmpeg release the GIL), so while the model works on
one batch the next videos are being read. Clips from different videos share a batch; a video's
result is complete once all its clips are scored (softmax averaged over clips). A video that
cannot be read becomes a ``failed`` result with the reason; it never stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from actionrec.clips import DecodedVideo, decode_clips
from actionrec.decode_pool import DecodePool
from actionrec.errors import ConfigError
from actionrec.models.checkpoint import LoadedModel
from actionrec.transforms import normalize_ncthw
from actionrec.video import VideoInfo


@dataclass(frozen=True)
class Label:
    label: str
    class_id: int
    score: float


@dataclass
class ClipPrediction:
    clip_index: int
    start_s: float
    end_s: float
    top_k: list[Label]


@dataclass
class VideoPrediction:
    uri: str
    status: str  # ok | partial | failed
    error: str | None = None
    info: VideoInfo | None = None
    num_clips: int = 0
    top_k: list[Label] = field(default_factory=list)
    clips: list[ClipPrediction] = field(default_factory=list)
    decode_s: float = 0.0
    infer_s: float = 0.0
    probs: torch.Tensor | None = field(default=None, repr=False)  # video-level class probabilities

    def to_dict(self, *, timeline: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "uri": self.uri,
            "status": self.status,
            "error": self.error,
            "top_k": [asdict(x) for x in self.top_k],
            "top1_label": self.top_k[0].label if self.top_k else None,
            "top1_score": self.top_k[0].score if self.top_k else None,
            "num_clips": self.num_clips,
            "decode_s": round(self.decode_s, 4),
            "infer_s": round(self.infer_s, 4),
        }
        if self.info is not None:
            d.update(duration_s=self.info.duration_s, fps=self.info.fps, width=self.info.width,
                     height=self.info.height, video_bytes=self.info.bytes)
        if timeline:
            d["clips"] = [asdict(c) for c in self.clips]
        return d


def _top_k(probs: torch.Tensor, classes: list[str], k: int) -> list[Label]:
    k = min(k, len(classes))
    scores, ids = torch.topk(probs, k)
    return [Label(classes[i], int(i), float(s)) for s, i in zip(scores.tolist(), ids.tolist(), strict=True)]


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
        device: str | torch.device | None = None,
        batch_size: int = 8,
        decode_workers: int = 2,
        amp: bool = True,
        channels_last: bool | None = None,
        decode_backend: str = "thread",
        decode_timeout_s: float | None = None,
        torch_compile: bool = False,
    ) -> None:
        """``torch_compile``: run the model through ``torch.compile`` with static shapes (a short last
        batch is padded, so one graph serves the run) and, unless told otherwise, channels_last_3d.
        On 2 CPU cores (``python -m bench.cpu_sweep``, r2plus1d_18): channels_last_3d gave 1.35-1.49x
        plain NCTHW at batch >= 2, and the input here has that layout already (uint8 NTHWC, permuted);
        compiling on top gave 1.07-1.25x more. The first batch pays the compilation (3-70 s).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if decode_workers < 1:
            raise ConfigError(f"decode_workers must be >= 1, got {decode_workers}")
        self.model = model
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.decode_backend = decode_backend
        self.decode_timeout_s = decode_timeout_s  # enforced with process workers only
        DecodePool.check_backend(decode_backend)
        cuda = self.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda and amp else None
        self.module = model.module.to(self.device).eval()
        wanted = (cuda or torch_compile) if channels_last is None else channels_last
        self.channels_last = wanted and _to_channels_last_3d(self.module)
        self.torch_compile = torch_compile
        self._forward = torch.compile(self.module, dynamic=False) if torch_compile else self.module

    def _run_batch(self, batch_nthwc: torch.Tensor) -> torch.Tensor:
        """uint8 clips -> class probabilities; the float conversion happens on the model's device."""
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
        return torch.softmax(logits.float(), dim=-1).cpu()

    def predict(self, uris: Iterable[str], *, top_k: int = 5, clips: int = 1) -> Iterator[VideoPrediction]:
        """Yield one result per uri as soon as it is complete (not necessarily in input order)."""
        if clips < 1:
            raise ConfigError(f"clips must be >= 1, got {clips}")
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
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
                batch, queue = queue[: self.batch_size], queue[self.batch_size :]
                started = time.perf_counter()
                probs = self._run_batch(torch.from_numpy(np.stack([c for _, _, c in batch])))
                share = (time.perf_counter() - started) / len(batch)
                for (slot, i, _), p in zip(batch, probs, strict=True):
                    v = videos[slot]
                    v["probs"][i] = p
                    v["left"] -= 1
                    v["infer_s"] += share
                    if v["left"] == 0:
                        yield self._finish(videos.pop(slot), classes, top_k)

    def _finish(self, v: dict[str, Any], classes: list[str], top_k: int) -> VideoPrediction:
        decoded: DecodedVideo = v["decoded"]
        clip_probs = torch.stack(v["probs"])
        video_probs = clip_probs.mean(dim=0)
        timeline = [
            ClipPrediction(i, s, e, _top_k(p, classes, top_k))
            for i, ((s, e), p) in enumerate(zip(decoded.spans, clip_probs, strict=True))
        ]
        return VideoPrediction(
            uri=decoded.uri,
            status="partial" if decoded.partial_reason else "ok",
            error=decoded.partial_reason,
            info=decoded.info,
            num_clips=len(timeline),
            top_k=_top_k(video_probs, classes, top_k),
            clips=timeline,
            decode_s=decoded.decode_s,
            infer_s=v["infer_s"],
            probs=video_probs,
        )

    def predict_all(self, uris: Iterable[str], *, top_k: int = 5, clips: int = 1) -> list[VideoPrediction]:
        """Results in input order (duplicates in ``uris`` each get their own result)."""
        uris = list(uris)
        by_uri: dict[str, list[VideoPrediction]] = {}
        for r in self.predict(uris, top_k=top_k, clips=clips):
            by_uri.setdefault(r.uri, []).append(r)
        return [by_uri[u].pop(0) for u in uris]
