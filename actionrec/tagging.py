"""The tagging pipeline's steps as plain functions (the Prefect flow composes them).

discover -> skip what is done -> shard -> per shard: decode + batched inference + write two files
-> one ``runs`` row -> a summary. Each step takes and returns small values (URIs, ids, counts), so
steps can run in other processes or on other machines.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from actionrec.errors import ConfigError, ModelError
from actionrec.inference import Predictor
from actionrec.lake import Lake, check_id, prediction_rows
from actionrec.models.checkpoint import LoadedModel, file_version, name_from_card
from actionrec.models.refs import load_model
from actionrec.sources import is_s3, local_path
from actionrec.storage import VideoObject, list_videos

DEFAULT_MODEL_NAME = "actionrec"


@dataclass(frozen=True)
class ModelRef:
    """A model pinned to one version for a whole run, even if the champion moves meanwhile."""

    ref: str  # what load_model() is given
    name: str
    version: str


@dataclass(frozen=True)
class TagSettings:
    top_k: int = 5
    clips: int = 1
    batch_size: int = 8
    decode_workers: int = 2
    device: str | None = None
    decode_backend: str = "process"  # isolated: an FFmpeg crash costs one video, not the run
    decode_timeout_s: float | None = 300.0  # per video; a stuck decode becomes a failed row
    torch_compile: bool = False  # 1.07-1.25x on CPU for long runs (see Predictor); each shard compiles once

    def __post_init__(self) -> None:
        for name in ("top_k", "clips", "batch_size", "decode_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def resolve_model(model: str | None, lake: str) -> ModelRef:
    """Pin a model reference to (name, version) without loading its weights."""
    ref = model or DEFAULT_MODEL_NAME
    if ref.startswith("torchvision:"):
        parts = ref.split(":")
        return ModelRef(ref, f"torchvision-{parts[1]}", parts[2] if len(parts) > 2 and parts[2] else "KINETICS400_V1")
    if is_s3(ref) or ref.startswith("file://") or local_path(ref).suffix in {".pt", ".pth"}:
        if is_s3(ref):
            loaded = load_model(ref)
            return ModelRef(ref, loaded.name, loaded.version)
        path = local_path(ref)
        if not path.exists():
            raise ModelError(f"checkpoint not found: {ref}")
        return ModelRef(str(path), name_from_card(path) or path.stem, file_version(path))
    name, _, version = ref.partition("@")
    lk = Lake(lake)
    version = version or lk.champion(check_id("model name", name)) or ""
    if not version:
        raise ModelError(f"model {name!r} has no champion in lake {lk.root}; train one (`actionrec retrain`) "
                         "or pass --model")
    return ModelRef(f"{name}@{version}", name, version)


def discover(source: str) -> list[VideoObject]:
    return list_videos(source)


def plan_shards(videos: list[VideoObject], done: set[tuple[str, str]], shard_size: int) -> list[list[VideoObject]]:
    """Videos not yet tagged ok by this model version, cut into shards of ``shard_size``."""
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    todo = [v for v in videos if (v.uri, v.etag) not in done]
    return [todo[i : i + shard_size] for i in range(0, len(todo), shard_size)]


_models: dict[tuple[str, str], LoadedModel] = {}
_models_lock = threading.Lock()


def _model(ref: ModelRef, lake: str) -> LoadedModel:
    """One loaded copy per process and model version (shards in one worker share it)."""
    key = (ref.ref, lake)
    with _models_lock:
        if key not in _models:
            model = load_model(ref.ref, lake=lake)
            model.name, model.version = ref.name, ref.version
            _models[key] = model
        return _models[key]


def tag_shard(
    lake: str, run_id: str, run_date: date, shard: int, videos: list[VideoObject], model: ModelRef,
    settings: TagSettings,
) -> dict[str, int]:
    """Decode, infer and write one shard; returns counts by status. Bad videos become rows."""
    loaded = _model(model, lake)
    predictor = Predictor(loaded, batch_size=settings.batch_size, decode_workers=settings.decode_workers,
                          device=settings.device, decode_backend=settings.decode_backend,
                          decode_timeout_s=settings.decode_timeout_s, torch_compile=settings.torch_compile)
    by_uri = {v.uri: v for v in videos}
    results = [(by_uri[r.uri], r) for r in predictor.predict(list(by_uri), top_k=settings.top_k, clips=settings.clips)]
    preds, clips = prediction_rows(results, run_id=run_id, model_name=model.name, model_version=model.version)
    Lake(lake).write_shard(run_id, run_date, shard, preds, clips)
    counts = Counter(r.status for _, r in results)
    return {"ok": counts["ok"], "partial": counts["partial"], "failed": counts["failed"]}


def run_row(*, run_id: str, flow: str, source: str, lake: str, model: ModelRef, started_at: datetime,
            listed: int, skipped: int, counts: dict[str, int]) -> dict[str, Any]:
    finished = datetime.now(timezone.utc)
    return {"run_id": run_id, "flow": flow, "source": source, "lake": lake, "model_name": model.name,
            "model_version": model.version, "started_at": started_at, "finished_at": finished,
            "videos_listed": listed, "videos_skipped": skipped, "ok": counts.get("ok", 0),
            "partial": counts.get("partial", 0), "failed": counts.get("failed", 0),
            "seconds": (finished - started_at).total_seconds()}


def summary_markdown(lake: str, row: dict[str, Any], top: int = 10) -> str:
    """A person's view of a run: counts, the most frequent labels and every failure with its reason."""
    from actionrec.query import query

    rid = row["run_id"].replace("'", "''")
    _, labels = query(lake, f"SELECT top1_label, count(*) AS n FROM predictions WHERE run_id = '{rid}' "
                            f"AND status <> 'failed' GROUP BY 1 ORDER BY n DESC, 1 LIMIT {int(top)}")
    _, failures = query(lake, f"SELECT video_uri, status, error FROM predictions WHERE run_id = '{rid}' "
                              "AND status <> 'ok' ORDER BY video_uri LIMIT 200")
    lines = [
        f"# Tag run `{row['run_id']}`", "",
        f"Model `{row['model_name']}` version `{row['model_version']}`; source `{row['source']}`; "
        f"lake `{row['lake']}`.", "",
        "| listed | skipped | ok | partial | failed | seconds |", "|---:|---:|---:|---:|---:|---:|",
        f"| {row['videos_listed']} | {row['videos_skipped']} | {row['ok']} | {row['partial']} | {row['failed']} "
        f"| {row['seconds']:.1f} |", "",
    ]
    if labels:
        lines += ["## Top labels", "", "| label | videos |", "|---|---:|"]
        lines += [f"| {label} | {n} |" for label, n in labels] + [""]
    if failures:
        lines += ["## Not ok", "", "| video | status | reason |", "|---|---|---|"]
        lines += [f"| `{u}` | {s} | {(e or '').replace('|', '/')} |" for u, s, e in failures]
    return "\n".join(lines) + "\n"


def default_lake() -> str:
    return os.environ.get("ACTIONREC_LAKE", "./actionrec-lake")
