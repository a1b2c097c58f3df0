"""Batched inference across videos: a decode pool feeds fixed-size batches of clips to the model.

Decoding runs in worker threads (PyAV and FFmpeg release the GIL), so while the model works on
one batch the next videos are being read. Clips from different videos share a batch; a video's
result is complete once all its clips are scored (softmax averaged over clips). A video that
cannot be read becomes a ``failed`` result with the reason; it never stops the others.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import torch

from actionrec.errors import ActionRecError, ConfigError, VideoError
from actionrec.models.checkpoint import LoadedModel
from actionrec.sampling import uniform_clips
from actionrec.sources import open_input
from actionrec.transforms import eval_clip
from actionrec.video import VideoInfo, VideoReader


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


@dataclass
class DecodedVideo:
    """What a decode worker hands back: model-ready clips, or the reason there are none."""

    uri: str
    clips_ncthw: torch.Tensor | None
    spans: list[tuple[float, float]]
    info: VideoInfo | None
    decode_s: float
    partial_reason: str | None = None
    error: str | None = None


def clip_times(reader: VideoReader, num_clips: int, model: LoadedModel) -> list[list[Fraction]]:
    return uniform_clips(reader.duration, reader.fps, num_clips, model.spec.clip_sampling)


def decode_for_model(uri: str, model: LoadedModel, num_clips: int) -> DecodedVideo:
    """Open, sample ``num_clips`` clips and preprocess them; errors become a reason, not an exception."""
    start = time.perf_counter()
    try:
        with open_input(uri) as source, VideoReader(source) as reader:
            info = reader.info()
            times = clip_times(reader, num_clips, model)
            flat = [t for clip in times for t in clip]
            read = reader.read(flat, short_side=model.spec.short_side)
            per_clip = model.spec.frames_per_clip
            clips = torch.stack(
                [eval_clip(read.frames_thwc[i * per_clip : (i + 1) * per_clip], model.spec) for i in range(num_clips)]
            )
            half = 1 / (2 * reader.fps)
            duration = reader.duration
            spans = [(float(max(c[0] - half, 0)), float(min(c[-1] + half, duration))) for c in times]
            return DecodedVideo(uri, clips, spans, info, time.perf_counter() - start, read.partial_reason)
    except VideoError as e:
        return DecodedVideo(uri, None, [], None, time.perf_counter() - start, error=e.reason)
    except ActionRecError as e:
        return DecodedVideo(uri, None, [], None, time.perf_counter() - start, error=str(e))
    except Exception as e:  # noqa: BLE001 - an unexpected failure is still one video's row, with its reason
        return DecodedVideo(uri, None, [], None, time.perf_counter() - start,
                            error=f"unexpected error while decoding: {type(e).__name__}: {e}")


def _top_k(probs: torch.Tensor, classes: list[str], k: int) -> list[Label]:
    k = min(k, len(classes))
    scores, ids = torch.topk(probs, k)
    return [Label(classes[i], int(i), float(s)) for s, i in zip(scores.tolist(), ids.tolist(), strict=True)]


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
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if decode_workers < 1:
            raise ConfigError(f"decode_workers must be >= 1, got {decode_workers}")
        self.model = model
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        cuda = self.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda and amp else None
        self.channels_last = cuda if channels_last is None else channels_last
        self.module = model.module.to(self.device).eval()
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last_3d)

    def _run_batch(self, batch_ncthw: torch.Tensor) -> torch.Tensor:
        cuda = self.device.type == "cuda"
        if cuda:
            batch_ncthw = batch_ncthw.pin_memory()
        x = batch_ncthw.to(self.device, non_blocking=cuda)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        autocast = torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with torch.inference_mode(), autocast:
            logits = self.module(x)
        return torch.softmax(logits.float(), dim=-1).cpu()

    def predict(self, uris: Iterable[str], *, top_k: int = 5, clips: int = 1) -> Iterator[VideoPrediction]:
        """Yield one result per uri as soon as it is complete (not necessarily in input order)."""
        if clips < 1:
            raise ConfigError(f"clips must be >= 1, got {clips}")
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        classes = self.model.classes
        uri_iter = iter(uris)
        prefetch = self.decode_workers * 2
        queue: list[tuple[int, int, torch.Tensor]] = []  # (video slot, clip index, clip_cthw)
        videos: dict[int, dict[str, Any]] = {}
        next_slot = 0
        with cf.ThreadPoolExecutor(self.decode_workers, thread_name_prefix="decode") as pool:
            in_flight: set[cf.Future[DecodedVideo]] = set()

            def refill() -> None:
                while len(in_flight) < prefetch:
                    uri = next(uri_iter, None)
                    if uri is None:
                        return
                    in_flight.add(pool.submit(decode_for_model, uri, self.model, clips))

            refill()
            while in_flight or queue:
                if in_flight and len(queue) < self.batch_size:
                    done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        in_flight.discard(fut)
                        decoded = fut.result()
                        if decoded.clips_ncthw is None:
                            yield VideoPrediction(decoded.uri, "failed", decoded.error, decode_s=decoded.decode_s)
                            continue
                        slot, next_slot = next_slot, next_slot + 1
                        videos[slot] = {"decoded": decoded, "probs": [None] * clips, "left": clips, "infer_s": 0.0}
                        queue.extend((slot, i, c) for i, c in enumerate(decoded.clips_ncthw))
                        decoded.clips_ncthw = None  # the queue holds the clips now
                    refill()
                    if not queue or (in_flight and len(queue) < self.batch_size):
                        continue
                batch, queue = queue[: self.batch_size], queue[self.batch_size :]
                started = time.perf_counter()
                probs = self._run_batch(torch.stack([c for _, _, c in batch]))
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
