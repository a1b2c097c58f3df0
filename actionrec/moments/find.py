"""``actionrec find``: where a label occurs, best first, from the lake's ``segments``; and a contact
sheet with a thumbnail at each segment's start."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.errors import ConfigError

# The segments of each video's latest run per model name (as latest_predictions chooses it), so
# tagging a video again does not list its moments twice.
FIND_SQL = """
SELECT s.video_uri, s.label, s.start_s, s.end_s, s.score, s.num_clips, s.model_name, s.model_version, s.run_id
FROM segments s JOIN latest_predictions p
  ON s.run_id = p.run_id AND s.video_uri = p.video_uri AND s.model_name = p.model_name
WHERE s.label = $label AND s.score >= $min_score AND ($model IS NULL OR s.model_name = $model)
ORDER BY s.score DESC, s.end_s - s.start_s DESC, s.video_uri, s.start_s
LIMIT $limit
"""


@dataclass(frozen=True)
class Moment:
    video_uri: str
    label: str
    start_s: float
    end_s: float
    score: float
    num_clips: int
    model_name: str
    model_version: str
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find(lake: str | os.PathLike, label: str, *, min_score: float = 0.0, model: str | None = None,
         limit: int = 100) -> list[Moment]:
    """The segments labeled ``label`` scoring at least ``min_score``, best first."""
    from actionrec.lake.query import query

    if not 0 <= min_score <= 1:
        raise ConfigError(f"--min-score must be in [0, 1], got {min_score}")
    if limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    _, rows = query(lake, FIND_SQL, {"label": label, "min_score": float(min_score), "model": model,
                                     "limit": int(limit)})
    return [Moment(*r) for r in rows]


def known_labels(lake: str | os.PathLike) -> list[str]:
    """Labels that have segments in the lake (to say what exists when a search finds nothing)."""
    from actionrec.lake.query import query

    return [r[0] for r in query(lake, "SELECT DISTINCT label FROM segments ORDER BY 1")[1]]


def clock(seconds: float) -> str:
    """``h:mm:ss.s`` (or ``m:ss.s`` under an hour), how a person reads a place in a recording."""
    minutes, sec = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{sec:04.1f}" if hours else f"{minutes}:{sec:04.1f}"


def thumbnail_time(m: Moment) -> float:
    """Where a moment's thumbnail is taken: just after its start (0.5 s in, or a quarter in if it is
    shorter than 2 s), so a segment that opens on a fade or a cut shows what it holds."""
    return m.start_s + min(0.5, (m.end_s - m.start_s) / 4)


def moments_sheet(moments: Sequence[Moment], path: str | os.PathLike, height: int = 96,
                  width: int = 160) -> Path:
    """A contact sheet: a thumbnail at each moment's start (``thumbnail_time``), in the order given,
    captioned with the video's name, the start time and the score (each video is opened once)."""
    from actionrec.data.clips import crop_thwc
    from actionrec.data.sheet import contact_sheet
    from actionrec.io.storage import open_input
    from actionrec.io.video import VideoReader

    if not moments:
        raise ConfigError("nothing to put on a contact sheet: no moment was found")
    thumbs: dict[int, np.ndarray] = {}
    by_video: dict[str, list[int]] = {}
    for i, m in enumerate(moments):
        by_video.setdefault(m.video_uri, []).append(i)
    for uri, indices in by_video.items():
        with open_input(uri) as source, VideoReader(source) as reader:
            read = reader.read([thumbnail_time(moments[i]) for i in indices], short_side=height)
        for i, frame in zip(indices, read.frames_thwc, strict=True):
            thumbs[i] = crop_thwc(frame[None], (height, width))[0]
    frames = np.stack([thumbs[i] for i in range(len(moments))])
    captions = [f"{m.video_uri.rsplit('/', 1)[-1][:18]} {clock(m.start_s)} {m.score:.2f}" for m in moments]
    rows = -(-len(moments) // 4)
    return contact_sheet(frames, [m.start_s for m in moments], rows, path, captions=captions)
