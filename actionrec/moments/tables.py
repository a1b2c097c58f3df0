"""The ``segments`` and ``shots`` rows of a dense tag shard."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from actionrec.inference.results import VideoPrediction
from actionrec.lake.schema import SEGMENTS, SHOTS
from actionrec.moments.segments import SegmentRules, video_segments


def moment_tables(results: Iterable[tuple[str, VideoPrediction]], *, run_id: str, model_name: str,
                  model_version: str, rules: SegmentRules) -> tuple[pa.Table, pa.Table]:
    """Segments and shots of each video (its URI as the lake names it, and its result) that was
    read at least in part; a failed video has neither."""
    segments, shots = [], []
    for uri, r in results:
        for i, seg in enumerate(video_segments(r, rules)):
            segments.append({"run_id": run_id, "video_uri": uri, "model_name": model_name,
                             "model_version": model_version, "segment_index": i, "label": seg.label,
                             "start_s": seg.start_s, "end_s": seg.end_s, "score": seg.score,
                             "num_clips": seg.num_clips})
        shots += [{"run_id": run_id, "video_uri": uri, "shot_index": i, "start_s": s.start_s, "end_s": s.end_s,
                   "start_kind": s.start_kind} for i, s in enumerate(r.shots)]
    return pa.Table.from_pylist(segments, SEGMENTS), pa.Table.from_pylist(shots, SHOTS)
