"""The Parquet lake: predictions, clip timelines, runs, models and evaluations (see DESIGN.md).

Layout under a folder or ``s3://bucket/prefix``::

    predictions/run_date=YYYY-MM-DD/<run_id>-<shard>.parquet
    clip_predictions/run_date=YYYY-MM-DD/<run_id>-<shard>.parquet
    runs/run_date=YYYY-MM-DD/<run_id>.parquet
    models/<model_name>/<version>/model.pt, card.json      (immutable once written)
    models/<model_name>/champion.json                     {"version": ...}
    evaluations/<model_name>/<version>/metrics.parquet, per_class.parquet, report.md, confusion.png

File names are deterministic per (run, shard), so a retried shard overwrites its own file.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from actionrec.errors import ModelError, StorageError
from actionrec.inference import Label, VideoPrediction
from actionrec.models.checkpoint import LoadedModel, card_path, file_version, load_checkpoint
from actionrec.storage import Store, VideoObject

TOPK_TYPE = pa.list_(pa.struct([("label", pa.string()), ("class_id", pa.int32()), ("score", pa.float32())]))
TS = pa.timestamp("us", tz="UTC")

PREDICTIONS = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("video_etag", pa.string()), ("video_bytes", pa.int64()),
    ("model_name", pa.string()), ("model_version", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("duration_s", pa.float64()), ("fps", pa.float64()), ("width", pa.int32()), ("height", pa.int32()),
    ("num_clips", pa.int32()), ("top_k", TOPK_TYPE), ("top1_label", pa.string()), ("top1_score", pa.float32()),
    ("decode_s", pa.float32()), ("infer_s", pa.float32()), ("processed_at", TS),
])
CLIP_PREDICTIONS = pa.schema([
    ("run_id", pa.string()), ("video_uri", pa.string()), ("model_version", pa.string()), ("clip_index", pa.int32()),
    ("start_s", pa.float64()), ("end_s", pa.float64()), ("top_k", TOPK_TYPE), ("top1_label", pa.string()),
    ("top1_score", pa.float32()),
])
RUNS = pa.schema([
    ("run_id", pa.string()), ("flow", pa.string()), ("source", pa.string()), ("lake", pa.string()),
    ("model_name", pa.string()), ("model_version", pa.string()), ("started_at", TS), ("finished_at", TS),
    ("videos_listed", pa.int64()), ("videos_skipped", pa.int64()), ("ok", pa.int64()), ("partial", pa.int64()),
    ("failed", pa.int64()), ("seconds", pa.float64()),
])
EVALUATIONS = pa.schema([
    ("model_name", pa.string()), ("model_version", pa.string()), ("labels_sha256", pa.string()), ("split", pa.string()),
    ("num_videos", pa.int64()), ("clips_per_video", pa.int32()), ("top1", pa.float64()), ("top5", pa.float64()),
    ("mean_class_accuracy", pa.float64()), ("ece", pa.float64()), ("created_at", TS), ("promoted", pa.bool_()),
    ("champion_version", pa.string()), ("champion_top1", pa.float64()),
])
TABLES = {"predictions": PREDICTIONS, "clip_predictions": CLIP_PREDICTIONS, "runs": RUNS}

UTC = timezone.utc
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_id(kind: str, value: str) -> str:
    """Run ids, model names and versions become path parts: letters, digits, '.', '_', '-' only."""
    if not _ID.match(value) or ".." in value:
        raise StorageError(f"invalid {kind} {value!r}: use letters, digits, '.', '_' and '-'")
    return value


def _topk(labels: Sequence[Label]) -> list[dict[str, Any]]:
    return [{"label": x.label, "class_id": x.class_id, "score": x.score} for x in labels]


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def prediction_rows(
    results: Iterable[tuple[VideoObject, VideoPrediction]], *, run_id: str, model_name: str, model_version: str,
    processed_at: datetime | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Rows for ``predictions`` and ``clip_predictions`` from a shard's results."""
    now = processed_at or datetime.now(UTC)
    rows, clips = [], []
    for obj, r in results:
        info = r.info
        top = _topk(r.top_k)
        rows.append({
            "run_id": run_id, "video_uri": obj.uri, "video_etag": obj.etag, "video_bytes": obj.size,
            "model_name": model_name, "model_version": model_version, "status": r.status, "error": r.error,
            "duration_s": info.duration_s if info else None, "fps": info.fps if info else None,
            "width": info.width if info else None, "height": info.height if info else None,
            "num_clips": r.num_clips, "top_k": top, "top1_label": top[0]["label"] if top else None,
            "top1_score": top[0]["score"] if top else None, "decode_s": r.decode_s, "infer_s": r.infer_s,
            "processed_at": now,
        })
        for c in r.clips:
            ctop = _topk(c.top_k)
            clips.append({
                "run_id": run_id, "video_uri": obj.uri, "model_version": model_version, "clip_index": c.clip_index,
                "start_s": c.start_s, "end_s": c.end_s, "top_k": ctop, "top1_label": ctop[0]["label"] if ctop else None,
                "top1_score": ctop[0]["score"] if ctop else None,
            })
    return pa.Table.from_pylist(rows, PREDICTIONS), pa.Table.from_pylist(clips, CLIP_PREDICTIONS)


class Lake:
    """One lake root; every method takes and returns small values (ids, URIs, tables)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.store = Store(root)
        self.root = self.store.root

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- predictions and runs -------------------------------------------------------------------
    def write_shard(self, run_id: str, run_date: date, shard: int, predictions: pa.Table, clips: pa.Table) -> list[str]:
        """Write one shard's two files; the names depend only on (run, shard), so a retry overwrites."""
        check_id("run id", run_id)
        name = f"{run_id}-{shard:05d}.parquet"
        part = f"run_date={run_date.isoformat()}"
        return [
            self.store.write_bytes(f"predictions/{part}/{name}", _parquet_bytes(predictions)),
            self.store.write_bytes(f"clip_predictions/{part}/{name}", _parquet_bytes(clips)),
        ]

    def write_run(self, row: dict[str, Any], run_date: date) -> str:
        check_id("run id", row["run_id"])
        table = pa.Table.from_pylist([row], RUNS)
        return self.store.write_bytes(f"runs/run_date={run_date.isoformat()}/{row['run_id']}.parquet",
                                      _parquet_bytes(table))

    def dataset(self, name: str) -> Any:
        """A lazily scanned pyarrow dataset of a table (hive ``run_date`` included), or an empty table."""
        import pyarrow.dataset as ds

        schema = TABLES[name].append(pa.field("run_date", pa.string()))
        files = [v.uri for v in self.store.list(name) if v.uri.endswith(".parquet")]
        if not files:
            return schema.empty_table()
        fs, paths, base = self._paths(files, name)
        partitioning = ds.partitioning(pa.schema([("run_date", pa.string())]), flavor="hive")
        return ds.dataset(paths, schema=schema, format="parquet", filesystem=fs, partitioning=partitioning,
                          partition_base_dir=base)

    def _paths(self, files: list[str], name: str) -> tuple[Any, list[str], str]:
        if self.store.is_s3:
            from actionrec.s3 import arrow_filesystem

            return arrow_filesystem(), [f.removeprefix("s3://") for f in files], self.root.removeprefix("s3://") + "/" + name
        from urllib.parse import unquote, urlparse

        return None, [unquote(urlparse(f).path) for f in files], f"{self.root}/{name}"

    def table(self, name: str, columns: list[str] | None = None, filter: Any = None) -> pa.Table:
        data = self.dataset(name)
        if isinstance(data, pa.Table):  # no files yet
            return data.select(columns) if columns else data
        return data.to_table(columns=columns, filter=filter)

    def done(self, model_version: str) -> set[tuple[str, str]]:
        """(video_uri, video_etag) already tagged ``ok`` by this model version: work to skip."""
        import pyarrow.dataset as ds

        wanted = (ds.field("model_version") == model_version) & (ds.field("status") == "ok")
        t = self.table("predictions", ["video_uri", "video_etag"], filter=wanted)
        return set(zip(t.column("video_uri").to_pylist(), t.column("video_etag").to_pylist(), strict=True))

    # -- models ----------------------------------------------------------------------------------
    def register_model(self, name: str, checkpoint: str | os.PathLike) -> str:
        """Copy a checkpoint into ``models/<name>/<version>/`` (immutable: never overwritten)."""
        check_id("model name", name)
        checkpoint = Path(checkpoint)
        version = file_version(checkpoint)
        if not self.store.exists(f"models/{name}/{version}/model.pt"):
            card = card_path(checkpoint)
            if card.exists():
                meta = json.loads(card.read_text())
                meta.update(name=name, version=version)
                self.store.write_bytes(f"models/{name}/{version}/card.json", json.dumps(meta, indent=2).encode())
            self.store.write_file(f"models/{name}/{version}/model.pt", checkpoint)
        return version

    def champion(self, name: str) -> str | None:
        data = self.store.read_bytes(f"models/{check_id('model name', name)}/champion.json")
        return json.loads(data)["version"] if data else None

    def set_champion(self, name: str, version: str) -> None:
        """Switch the champion with one atomic write of ``champion.json``."""
        check_id("model version", version)
        if not self.store.exists(f"models/{check_id('model name', name)}/{version}/model.pt"):
            raise ModelError(f"cannot promote {name}@{version}: no such model in {self.root}")
        payload = {"version": version, "promoted_at": datetime.now(UTC).isoformat()}
        self.store.write_bytes(f"models/{name}/champion.json", json.dumps(payload).encode())

    def load_model(self, name: str, version: str | None = None) -> LoadedModel:
        check_id("model name", name)
        version = version or self.champion(name)
        if version is None:
            raise ModelError(f"model {name!r} has no champion in lake {self.root} (train one with `actionrec retrain`)")
        check_id("model version", version)
        rel = f"models/{name}/{version}/model.pt"
        if not self.store.is_s3:
            path = Path(self.store.uri(rel))
            if not path.exists():
                raise ModelError(f"model {name}@{version} is not in lake {self.root}")
            return load_checkpoint(path, name=name)
        data = self.store.read_bytes(rel)
        if data is None:
            raise ModelError(f"model {name}@{version} is not in lake {self.root}")
        with tempfile.TemporaryDirectory(prefix="actionrec-model-") as tmp:
            path = Path(tmp) / "model.pt"
            path.write_bytes(data)
            return load_checkpoint(path, name=name)

    # -- evaluations -------------------------------------------------------------------------------
    def write_evaluation(self, name: str, version: str, row: dict[str, Any], per_class: pa.Table,
                         files: dict[str, Path]) -> str:
        """metrics.parquet (one row), per_class.parquet and the report files of one evaluation."""
        base = f"evaluations/{check_id('model name', name)}/{check_id('model version', version)}"
        for fname, path in files.items():
            self.store.write_file(f"{base}/{fname}", path)
        self.store.write_bytes(f"{base}/per_class.parquet", _parquet_bytes(per_class))
        return self.store.write_bytes(f"{base}/metrics.parquet", _parquet_bytes(pa.Table.from_pylist([row], EVALUATIONS)))

    def evaluations(self) -> Any:
        """All evaluations' metrics rows, as a lazily scanned dataset (or an empty table)."""
        import pyarrow.dataset as ds

        files = [v.uri for v in self.store.list("evaluations") if v.uri.endswith("/metrics.parquet")]
        if not files:
            return EVALUATIONS.empty_table()
        fs, paths, _ = self._paths(files, "evaluations")
        return ds.dataset(paths, schema=EVALUATIONS, format="parquet", filesystem=fs)

    def mark_promoted(self, name: str, version: str) -> None:
        """Set ``promoted`` on a version's evaluation row (rewritten whole)."""
        rel = f"evaluations/{check_id('model name', name)}/{check_id('model version', version)}/metrics.parquet"
        data = self.store.read_bytes(rel)
        if data is None:
            return
        table = pq.read_table(io.BytesIO(data))
        table = table.set_column(table.schema.get_field_index("promoted"), "promoted",
                                 pa.array([True] * table.num_rows, pa.bool_()))
        self.store.write_bytes(rel, _parquet_bytes(table))
