"""The tagging pipeline's steps as plain functions (the Prefect flow composes them).

pin the model -> discover -> skip what this model already tagged -> shard -> per shard: decode +
batched inference + write two files (three with embeddings) -> one ``runs`` row -> a summary. Each
step takes and returns small values (URIs, ids, counts), so steps can run in other processes or on
other machines.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from actionrec.engines.choice import EngineChoice, choose_engine
from actionrec.engines.runners import Runner, open_runner
from actionrec.inference.results import Label, VideoPrediction
from actionrec.inference.settings import InferenceSettings
from actionrec.io.storage import VideoObject, list_videos
from actionrec.lake.lake import Lake
from actionrec.lake.schema import CLIP_PREDICTIONS, EMBEDDINGS, PREDICTIONS, RUN_COMPLETE, RUN_INCOMPLETE
from actionrec.loop.drift import IO_ERRORS, Drift, drift_for_run, not_computed
from actionrec.models.refs import PinnedModel, pin_model
from actionrec.names import DEFAULT_MODEL_NAME
from actionrec.pipelines.settings import TAG_DEFAULTS, TagSettings

UTC = timezone.utc


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def engine_of(settings: InferenceSettings) -> EngineChoice:
    """The engine and precision a run's settings resolve to on this machine."""
    return choose_engine(settings.engine, settings.precision, settings.device, torch_compile=settings.torch_compile)


def resolve_model(model: str | None, lake: str, settings: InferenceSettings = TAG_DEFAULTS) -> PinnedModel:
    """Pin the run's model (the lake's champion when none is named), open it with the run's engine
    (converting it once for OpenVINO) and score one blank clip: a model that cannot be loaded (a
    refused or damaged checkpoint, missing weights) or converted, or that scores NaN, fails the run
    here, before any shard; shards in this process reuse what was opened."""
    from actionrec.inference.predictor import Predictor

    pinned = pin_model(model or DEFAULT_MODEL_NAME, lake)
    Predictor(_runner(pinned, lake, settings), batch_size=1).self_check()
    return pinned


def discover(source: str) -> list[VideoObject]:
    return list_videos(source)


@dataclass(frozen=True)
class Plan:
    """The shards to tag, and the lake files that had to be skipped to plan them (URI -> reason)."""

    shards: list[list[VideoObject]]
    damaged: dict[str, str]


def plan(lake: str, videos: list[VideoObject], model: PinnedModel, shard_size: int, *,
         embeddings: bool = False) -> Plan:
    """Videos not yet tagged ok by this model, cut into shards of ``shard_size``; with ``embeddings``,
    also those it tagged without storing their embedding (they are tagged again, and get one).
    Damaged lake files are skipped (their videos count as not done) and reported."""
    lk = Lake(lake)
    done = lk.done(model.name, model.version)
    if embeddings:
        done &= lk.embedded(model.name, model.version)
    todo = [v for v in videos if (v.uri, v.etag) not in done]
    return Plan([todo[i : i + shard_size] for i in range(0, len(todo), shard_size)], dict(lk.damaged))


def _topk(labels: Iterable[Label]) -> list[dict[str, Any]]:
    return [{"label": x.label, "class_id": x.class_id, "score": x.score} for x in labels]


def prediction_rows(results: Iterable[tuple[VideoObject, VideoPrediction]], *, run_id: str, model: PinnedModel,
                    engine: EngineChoice, processed_at: datetime | None = None) -> tuple[pa.Table, pa.Table]:
    """Rows for ``predictions`` and ``clip_predictions`` from a shard's results; ``engine`` is what
    scored them (each row says so)."""
    now = processed_at or datetime.now(UTC)
    rows, clips = [], []
    for obj, r in results:
        info = r.info
        top = _topk(r.top_k)
        rows.append({
            "run_id": run_id, "video_uri": obj.uri, "video_etag": obj.etag, "video_bytes": obj.size,
            "model_name": model.name, "model_version": model.version, "status": r.status, "error": r.error,
            "duration_s": info.duration_s if info else None, "fps": info.fps if info else None,
            "width": info.width if info else None, "height": info.height if info else None,
            "num_clips": r.num_clips, "top_k": top, "top1_label": top[0]["label"] if top else None,
            "top1_score": top[0]["score"] if top else None, "decode_s": r.decode_s, "infer_s": r.infer_s,
            "processed_at": now, "engine": engine.engine, "precision": engine.precision,
        })
        for c in r.clips:
            ctop = _topk(c.top_k)
            clips.append({
                "run_id": run_id, "video_uri": obj.uri, "model_version": model.version, "clip_index": c.clip_index,
                "start_s": c.start_s, "end_s": c.end_s, "top_k": ctop, "top1_label": ctop[0]["label"] if ctop else None,
                "top1_score": ctop[0]["score"] if ctop else None,
            })
    return pa.Table.from_pylist(rows, PREDICTIONS), pa.Table.from_pylist(clips, CLIP_PREDICTIONS)


def embedding_rows(results: Iterable[tuple[VideoObject, VideoPrediction]], *, run_id: str,
                   model: PinnedModel) -> pa.Table:
    """Rows for ``embeddings``: one per video that has a vector (failed videos, and videos whose
    features had no direction, have none)."""
    rows = [{"run_id": run_id, "video_uri": obj.uri, "video_etag": obj.etag, "model_name": model.name,
             "model_version": model.version, "dim": len(r.embedding), "embedding": r.embedding}
            for obj, r in results if r.embedding is not None and r.status != "failed"]
    return pa.Table.from_pylist(rows, EMBEDDINGS)


_models: dict[tuple[str, str, str], Any] = {}
_models_lock = threading.Lock()


def _runner(model: PinnedModel, lake: str, settings: InferenceSettings) -> Runner:
    """What scores a shard's clips. OpenVINO opens the cached conversion (no checkpoint, no torch;
    the compiled model is shared in the process); torch shares one loaded copy per process."""
    choice = engine_of(settings)
    if choice.engine == "openvino":
        return open_runner(model, choice, lake=lake)
    return open_runner(_loaded(model, lake), choice, batch_size=settings.batch_size,
                       torch_compile=settings.torch_compile)


def _loaded(model: PinnedModel, lake: str) -> Any:
    """One loaded copy per process and pinned model (shards in one worker share it)."""
    from actionrec.models.refs import load_model

    key = (model.ref, model.version, lake)
    with _models_lock:
        if key not in _models:
            _models[key] = load_model(model, lake=lake)
        return _models[key]


@dataclass(frozen=True)
class ShardResult:
    """What one shard did: counts by status, its time, and the videos that were not ok (with reasons)."""

    shard: int
    videos: int
    ok: int
    partial: int
    failed: int
    seconds: float
    not_ok: tuple[tuple[str, str, str], ...]  # (video uri, status, reason)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tag_shard(lake: str, run_id: str, run_date: date, shard: int, videos: list[VideoObject], model: PinnedModel,
              settings: TagSettings) -> ShardResult:
    """Decode, infer and write one shard. Bad videos become rows with their reason, never exceptions.
    With ``settings.embeddings`` the shard's embeddings file (when any video has a vector) is written
    first: a shard whose predictions are written (its videos done) always has its vectors."""
    from actionrec.inference.predictor import Predictor

    started = time.perf_counter()
    predictor = Predictor(_runner(model, lake, settings), batch_size=settings.batch_size,
                          decode_workers=settings.decode_workers, decode_backend=settings.decode_backend,
                          decode_timeout_s=settings.decode_timeout_s)
    by_uri = {v.uri: v for v in videos if v.error is None}
    results = [(v, VideoPrediction(v.uri, "failed", v.error)) for v in videos if v.error is not None]
    results += [(by_uri[r.uri], r) for r in predictor.predict(list(by_uri), top_k=settings.top_k, clips=settings.clips,
                                                              crops=settings.crops, every=settings.every,
                                                              time_limit_s=settings.shard_timeout_s,
                                                              embeddings=settings.embeddings)]
    preds, clips = prediction_rows(results, run_id=run_id, model=model, engine=predictor.choice)
    store, part = Lake(lake), f"{run_id}-{shard:05d}"
    vectors = embedding_rows(results, run_id=run_id, model=model) if settings.embeddings else None
    if vectors is not None and vectors.num_rows:
        store.write_part("embeddings", part, run_date, vectors)
    if settings.every is not None:  # dense: segments and shots first, so a video counted done has them
        from actionrec.moments.tables import moment_tables

        tables = moment_tables(((v.uri, r) for v, r in results), run_id=run_id, model_name=model.name,
                               model_version=model.version, rules=settings.segment_rules())
        for name, table in zip(("segments", "shots"), tables, strict=True):
            store.write_part(name, part, run_date, table)
    store.write_shard(run_id, run_date, shard, preds, clips)
    counts = Counter(r.status for _, r in results)
    not_ok = tuple(sorted((r.uri, r.status, r.error or "") for _, r in results if r.status != "ok"))
    return ShardResult(shard, len(results), counts["ok"], counts["partial"], counts["failed"],
                       round(time.perf_counter() - started, 3), not_ok)


def run_row(*, run_id: str, flow: str, source: str, lake: str, model: PinnedModel, engine: EngineChoice,
            started_at: datetime, listed: int, skipped: int, counts: dict[str, int], lost: int = 0,
            damaged: int = 0, drift: Drift | None = None) -> dict[str, Any]:
    """The run's ``runs`` row; ``lost``: videos whose shard failed after its retries (a rerun takes
    them); ``damaged``: lake files skipped while planning; ``drift``: the run against the runs
    before it (its columns stay null without one)."""
    finished = datetime.now(UTC)
    drift_columns = drift.columns() if drift is not None else {
        "drift_measure": None, "drift_labels": None, "drift_confidence": None, "drift_flag": None,
        "drift_reason": None}
    return {"run_id": run_id, "flow": flow, "source": source, "lake": lake, "model_name": model.name,
            "model_version": model.version, "started_at": started_at, "finished_at": finished,
            "videos_listed": listed, "videos_skipped": skipped, "ok": counts.get("ok", 0),
            "partial": counts.get("partial", 0), "failed": counts.get("failed", 0),
            "seconds": (finished - started_at).total_seconds(),
            "status": RUN_INCOMPLETE if lost else RUN_COMPLETE, "videos_lost": lost, "damaged_files": damaged,
            "engine": engine.engine, "precision": engine.precision, **drift_columns}


def check_drift(lake: str, run_id: str, model_name: str, started_at: datetime, settings: TagSettings) -> Drift:
    """This run against the runs before it (``actionrec.loop.drift``). The lake failing to be read
    (storage, not code) does not fail the run: the drift is recorded as not computed, with why."""
    try:
        return drift_for_run(lake, run_id, model_name, settings.drift_window, threshold=settings.drift_threshold,
                             min_videos=settings.drift_min_videos, before=started_at)
    except IO_ERRORS as e:
        return not_computed(run_id, e, settings.drift_threshold)


def summary_markdown(lake: str, row: dict[str, Any], top: int = 10) -> str:
    """A person's view of a run: counts, the most frequent labels and every failure with its reason."""
    from actionrec.lake.query import query

    _, labels = query(lake, "SELECT top1_label, count(*) AS n FROM predictions WHERE run_id = ? "
                            "AND status <> 'failed' GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?", [row["run_id"], int(top)])
    _, failures = query(lake, "SELECT video_uri, status, error FROM predictions WHERE run_id = ? "
                              "AND status <> 'ok' ORDER BY video_uri LIMIT 200", [row["run_id"]])
    lines = [
        f"# Tag run `{row['run_id']}`", "",
        f"Model `{row['model_name']}` version `{row['model_version']}` ({row['engine']}, {row['precision']}); "
        f"source `{row['source']}`; "
        f"lake `{row['lake']}`; {row['status']}.", "",
        "| listed | skipped | ok | partial | failed | lost | seconds |", "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {row['videos_listed']} | {row['videos_skipped']} | {row['ok']} | {row['partial']} | {row['failed']} "
        f"| {row['videos_lost']} | {row['seconds']:.1f} |", "",
    ]
    if row["videos_lost"]:
        lines += [f"**{row['videos_lost']} videos were not tagged** (their shard failed after its retries); "
                  "the next run takes them.", ""]
    if row["damaged_files"]:
        lines += [f"**{row['damaged_files']} damaged lake files were skipped** (their videos were tagged again); "
                  "`actionrec lake check --quarantine` moves them aside.", ""]
    if labels:
        lines += ["## Top labels", "", "| label | videos |", "|---|---:|"]
        lines += [f"| {label} | {n} |" for label, n in labels] + [""]
    if row.get("drift_measure") is not None:
        lines += drift_lines(row)
    if failures:
        lines += ["## Not ok", "", "| video | status | reason |", "|---|---|---|"]
        lines += [f"| `{u}` | {s} | {(e or '').replace('|', '/')} |" for u, s, e in failures]
    return "\n".join(lines) + "\n"


def drift_lines(row: dict[str, Any]) -> list[str]:
    """The summary's drift section, from the row's drift columns."""
    def bits(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    flag = "**yes**" if row["drift_flag"] else "no"
    return ["## Drift", "",
            f"{row['drift_measure']} divergence in bits from the earlier runs of this model (0: the same mix, "
            "1: nothing in common).", "",
            "| label mix | confidence | flagged |", "|---:|---:|---|",
            f"| {bits(row['drift_labels'])} | {bits(row['drift_confidence'])} | {flag} |", "",
            (row["drift_reason"] or "").replace("|", "/"), ""]
