"""The lake's tables as pyarrow schemas (see ../shared/DESIGN.md): the contract users write SQL against."""

from __future__ import annotations

import pyarrow as pa

TOPK_TYPE = pa.list_(pa.struct([("label", pa.string()), ("class_id", pa.int32()), ("score", pa.float32())]))
TS = pa.timestamp("us", tz="UTC")
# Hive partition column of the run tables: a DATE in `actionrec query` as in plain DuckDB.
RUN_DATE = pa.field("run_date", pa.date32())

PREDICTIONS = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("video_etag", pa.string()), ("video_bytes", pa.int64()),
    ("model_name", pa.string()), ("model_version", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("duration_s", pa.float64()), ("fps", pa.float64()), ("width", pa.int32()), ("height", pa.int32()),
    ("num_clips", pa.int32()), ("top_k", TOPK_TYPE), ("top1_label", pa.string()), ("top1_score", pa.float32()),
    ("decode_s", pa.float32()), ("infer_s", pa.float32()), ("processed_at", TS),
    ("engine", pa.string()), ("precision", pa.string()),  # what scored the video: torch/openvino, f32/bf16/fp16
])
CLIP_PREDICTIONS = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("model_version", pa.string()), ("clip_index", pa.int32()),
    ("start_s", pa.float64()), ("end_s", pa.float64()), ("top_k", TOPK_TYPE), ("top1_label", pa.string()),
    ("top1_score", pa.float32()),
])
RUN_COMPLETE, RUN_INCOMPLETE = "complete", "incomplete"
RUNS = pa.schema([
    ("run_id", pa.string()), ("flow", pa.string()), ("source", pa.string()), ("lake", pa.string()),
    ("model_name", pa.string()), ("model_version", pa.string()), ("started_at", TS), ("finished_at", TS),
    ("videos_listed", pa.int64()), ("videos_skipped", pa.int64()), ("ok", pa.int64()), ("partial", pa.int64()),
    ("failed", pa.int64()), ("seconds", pa.float64()),
    # complete, or incomplete: videos_lost videos were not tagged (their shard failed); a rerun takes them
    ("status", pa.string()), ("videos_lost", pa.int64()),
    ("damaged_files", pa.int64()),  # lake files skipped while planning (actionrec lake check)
    ("engine", pa.string()), ("precision", pa.string()),
    # drift: this run's mix of top-1 labels and of confidences against the trailing window of earlier runs
    ("drift_measure", pa.string()),  # the divergence used, e.g. jensen-shannon
    ("drift_labels", pa.float64()), ("drift_confidence", pa.float64()),  # null: nothing to compare with yet
    ("drift_flag", pa.bool_()), ("drift_reason", pa.string()),
])
EVALUATIONS = pa.schema([
    ("model_name", pa.string()), ("model_version", pa.string()), ("labels_sha256", pa.string()), ("split", pa.string()),
    ("num_videos", pa.int64()), ("clips_per_video", pa.int32()), ("top1", pa.float64()), ("top5", pa.float64()),
    ("mean_class_accuracy", pa.float64()), ("ece", pa.float64()), ("created_at", TS), ("promoted", pa.bool_()),
    ("champion_version", pa.string()), ("champion_top1", pa.float64()),
])
PER_CLASS = pa.schema([
    ("class", pa.string()), ("support", pa.int64()), ("precision", pa.float64()), ("recall", pa.float64()),
    ("f1", pa.float64()),
])
# The loop's tables (see ../shared/DESIGN.md). Each row says which run or import produced it.
LABELING_QUEUE = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("video_etag", pa.string()),
    ("model_name", pa.string()), ("model_version", pa.string()),
    ("reason", pa.string()),  # why a person should look: margin, entropy, disagreement, quota, similar
    ("score", pa.float64()),  # how much: higher is more worth a person's time
    ("rank", pa.int32()), ("top1_label", pa.string()), ("top1_score", pa.float32()), ("margin", pa.float32()),
    ("entropy", pa.float32()), ("top_k", TOPK_TYPE), ("queued_at", TS),
])
LABELS = pa.schema([
    ("video_uri", pa.string()), ("label", pa.string()),
    ("source", pa.string()),  # labelstudio, csv, ...
    ("annotator", pa.string()), ("labeled_at", TS),
    ("import_id", pa.string()),  # one import of one file: the file's content hash, so a re-import is a no-op
    ("imported_at", TS),
    ("labels_version", pa.string()),  # the version of the labels table this import produced
    ("task_id", pa.string()),  # the labeling tool's own id for the task, when there is one
    ("split", pa.string()),  # train/val/test when a table pins the video to one (a curated test set); else null
])
EMBEDDINGS = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("video_etag", pa.string()),
    ("model_name", pa.string()), ("model_version", pa.string()), ("dim", pa.int32()),
    ("embedding", pa.list_(pa.float32())),  # the pooled penultimate features, L2-normalised, `dim` long
])
# Finding the moment (dense runs, actionrec.moments): labeled time ranges and shot changes per video.
SEGMENTS = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("model_name", pa.string()), ("model_version", pa.string()),
    ("segment_index", pa.int32()), ("label", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("score", pa.float32()),  # mean over its clips of the label's score
    ("num_clips", pa.int32()),
])
SHOTS = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("shot_index", pa.int32()),
    ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("start_kind", pa.string()),  # how the shot begins: start (of the video), cut or fade
])

# Tables written per run, partitioned by run_date; `labels` is partitioned by labels_date.
RUN_TABLES = {"predictions": PREDICTIONS, "clip_predictions": CLIP_PREDICTIONS, "runs": RUNS,
              "labeling_queue": LABELING_QUEUE, "embeddings": EMBEDDINGS, "segments": SEGMENTS, "shots": SHOTS}
LABELS_DATE = pa.field("labels_date", pa.date32())
PARTITIONS = {**{name: RUN_DATE for name in RUN_TABLES}, "labels": LABELS_DATE}
TABLES = {**RUN_TABLES, "labels": LABELS}
