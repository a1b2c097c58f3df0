"""What inference returns, torch-free: per-video and per-clip predictions with plain numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from actionrec.io.video import VideoInfo


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


@dataclass(frozen=True)
class Shot:
    """One shot of a video (dense runs): from a shot change, or the start, to the next."""

    start_s: float
    end_s: float
    start_kind: str  # start | cut | fade


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
    probs: np.ndarray | None = field(default=None, repr=False)  # video-level class probabilities, float32
    # pooled penultimate features, L2-normalised, float32 [C]; set only when embeddings were asked for
    embedding: np.ndarray | None = field(default=None, repr=False)
    shots: list[Shot] = field(default_factory=list)  # dense runs only

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


def top_k_labels(probs: np.ndarray, classes: list[str], k: int) -> list[Label]:
    """The ``k`` best classes, scores descending; ties go to the lower class id (as in the metrics)."""
    k = min(k, len(classes))
    order = np.argsort(-probs, kind="stable")[:k]
    return [Label(classes[i], int(i), float(probs[i])) for i in order]
