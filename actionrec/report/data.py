"""What a run report shows, read from the lake: one read-only DuckDB connection (the views of
``actionrec.lake.query``), the model registry and the evaluation files. No decoding here.

Columns read (keep them, or change this module with them):

- ``runs``: run_id, flow, source, lake, model_name, model_version, started_at, finished_at,
  videos_listed, videos_skipped, ok, partial, failed, seconds, status, videos_lost, damaged_files,
  engine, precision, drift_measure, drift_labels, drift_confidence, drift_flag, drift_reason, run_date
- ``predictions``: run_id, video_uri, video_bytes, status, error, top1_label, top1_score,
  duration_s, width, height
- ``clip_predictions``: run_id, video_uri, clip_index, start_s, end_s, top1_label, top1_score
- ``labeling_queue``: run_id, video_uri, reason, score, rank, top1_label, top1_score, margin, entropy
- the registry: ``Lake.champion_record``, ``Lake.evaluation`` (the metrics row) and the files
  ``evaluations/<model>/<version>/per_class.parquet`` and ``confusion.png``.
"""

from __future__ import annotations

import io
import logging
import threading
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from actionrec.errors import ConfigError
from actionrec.lake.lake import Lake
from actionrec.options import check_int, check_positive_seconds, option

log = logging.getLogger(__name__)

CONFIDENCE_BINS = 10


@dataclass(frozen=True)
class ReportSettings:
    recent_runs: int = option(14, "tag runs in the label-distribution chart, the reported run the last")
    chart_labels: int = option(10, "labels drawn in their own colour in the chart; the rest are 'other'")
    top_labels: int = option(20, "labels shown with their top examples")
    examples_per_label: int = option(4, "example thumbnails per label (the highest top-1 scores)")
    queue_rows: int = option(24, "labeling-queue entries shown")
    failure_rows: int = option(50, "failed and partial videos listed; the rest are counted")
    thumb_size: int = option(160, "longest side of a thumbnail, in pixels")
    thumb_max_mb: int = option(256, "an S3 video larger than this (MB) is not fetched for its thumbnail")
    thumb_workers: int = option(4, "videos decoded at once for thumbnails")
    thumb_budget_s: float = option(120.0, "seconds all thumbnails may take together; past it the rest are "
                                          "placeholders")
    timeout_s: float = option(300.0, "seconds the report's queries may take together", flag="--query-timeout")

    def __post_init__(self) -> None:
        for name in ("recent_runs", "chart_labels", "top_labels", "queue_rows", "failure_rows", "thumb_workers"):
            check_int("ReportSettings", name, getattr(self, name), 1)
        check_int("ReportSettings", "examples_per_label", self.examples_per_label, 0)
        check_int("ReportSettings", "thumb_size", self.thumb_size, 16)
        check_int("ReportSettings", "thumb_max_mb", self.thumb_max_mb, 0)
        check_positive_seconds("ReportSettings", "thumb_budget_s", self.thumb_budget_s)
        check_positive_seconds("ReportSettings", "timeout_s", self.timeout_s)


@dataclass
class Example:
    """A video shown with a thumbnail: the frame at ``at_s`` (the middle of its best clip)."""

    video_uri: str
    label: str | None
    score: float | None
    at_s: float
    video_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # queue: reason, score, rank, margin, entropy


@dataclass
class Evaluation:
    model_name: str
    version: str
    metrics: dict[str, Any]
    per_class: list[dict[str, Any]]
    confusion_png: bytes | None
    champion: dict[str, Any] | None  # champion.json: version, promoted_at, by, reason


@dataclass
class ReportData:
    run: dict[str, Any]  # the runs row (with run_date)
    labels: list[tuple[str, int, float | None]] = field(default_factory=list)  # this run: label, videos, mean score
    labels_total: int = 0
    recent: list[dict[str, Any]] = field(default_factory=list)  # runs rows, oldest first, with "labels": {label: n}
    confidence: list[int] = field(default_factory=list)  # this run's top-1 scores in CONFIDENCE_BINS bins
    confidence_before: list[int] = field(default_factory=list)  # the earlier runs of the window, the same way
    failures: list[tuple[str, str, str | None]] = field(default_factory=list)  # video_uri, status, error
    failures_total: int = 0
    examples: list[tuple[str, int, list[Example]]] = field(default_factory=list)  # label, videos, examples
    queue: list[Example] = field(default_factory=list)
    queue_total: int = 0
    evaluation: Evaluation | None = None
    evaluation_note: str | None = None  # why there is none, or what differs from the run's model
    errors: dict[str, str] = field(default_factory=dict)  # section -> why it could not be built


class _Sql:
    """One locked-down, read-only connection to the lake's views for the whole report, stopped
    past ``timeout_s`` (each ``actionrec.lake.query.query`` call would list and check every file again)."""

    def __init__(self, lake: str, timeout_s: float) -> None:
        from actionrec.lake.query import connect

        self.con = connect(lake)
        self.timer = threading.Timer(timeout_s, self.con.interrupt)
        self.timer.daemon = True
        self.timer.start()

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def close(self) -> None:
        self.timer.cancel()
        self.con.close()


RUN_COLUMNS = ("run_id, flow, source, lake, model_name, model_version, started_at, finished_at, videos_listed, "
               "videos_skipped, ok, partial, failed, seconds, status, videos_lost, damaged_files, engine, precision, "
               "drift_measure, drift_labels, drift_confidence, drift_flag, drift_reason, run_date")


def find_run(sql: _Sql, lake: str, run_id: str | None) -> dict[str, Any]:
    """The runs row of ``run_id`` (the latest tag run when None); a ``ConfigError`` when there is none."""
    if run_id is None:
        rows = sql.rows(f"SELECT {RUN_COLUMNS} FROM runs WHERE flow = 'tag' ORDER BY started_at DESC, run_id DESC "
                        "LIMIT 1")
        if not rows:
            raise ConfigError(f"no tag runs in lake {lake}: run `actionrec tag` first, or check --lake")
        return rows[0]
    rows = sql.rows(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ? ORDER BY finished_at DESC LIMIT 1", [run_id])
    if not rows:
        raise ConfigError(f"no run {run_id!r} in lake {lake} (actionrec query \"select run_id from runs\" lists them)")
    if rows[0]["flow"] != "tag":
        raise ConfigError(f"run {run_id!r} is a {rows[0]['flow']} run: reports are made for tag runs")
    return rows[0]


def _middle(start: float | None, end: float | None, duration: float | None) -> float:
    if start is not None and end is not None:
        return max(0.0, (float(start) + float(end)) / 2)
    if duration:
        return max(0.0, float(duration) / 2)
    return 0.0


def _counts(data: ReportData, sql: _Sql, settings: ReportSettings) -> None:
    run_id = data.run["run_id"]
    rows = sql.rows("SELECT top1_label AS label, count(*) AS n, avg(top1_score) AS mean FROM predictions "
                    "WHERE run_id = ? AND status <> 'failed' AND top1_label IS NOT NULL GROUP BY 1 "
                    "ORDER BY n DESC, label", [run_id])
    data.labels_total = len(rows)
    data.labels = [(r["label"], int(r["n"]), r["mean"]) for r in rows]


def _recent(data: ReportData, sql: _Sql, settings: ReportSettings) -> None:
    run = data.run
    runs = sql.rows(f"SELECT {RUN_COLUMNS} FROM runs WHERE flow = 'tag' AND (started_at < ? OR run_id = ?) "
                    "ORDER BY started_at DESC, run_id DESC LIMIT ?",
                    [run["started_at"], run["run_id"], settings.recent_runs])
    runs.reverse()
    ids = [r["run_id"] for r in runs]
    by_run: dict[str, dict[str, int]] = {i: {} for i in ids}
    bins: dict[str, list[int]] = {i: [0] * CONFIDENCE_BINS for i in ids}
    if ids:
        marks = ", ".join("?" * len(ids))
        for r in sql.rows(f"SELECT run_id, top1_label AS label, count(*) AS n FROM predictions WHERE run_id IN "
                          f"({marks}) AND status <> 'failed' AND top1_label IS NOT NULL GROUP BY 1, 2", ids):
            by_run[r["run_id"]][r["label"]] = int(r["n"])
        for r in sql.rows(f"SELECT run_id, least(greatest(floor(top1_score * {CONFIDENCE_BINS}), 0), "
                          f"{CONFIDENCE_BINS - 1})::INTEGER AS b, count(*) AS n FROM predictions WHERE run_id IN "
                          f"({marks}) AND status <> 'failed' AND isfinite(top1_score) GROUP BY 1, 2", ids):
            bins[r["run_id"]][int(r["b"])] += int(r["n"])
    for r in runs:
        r["labels"] = by_run[r["run_id"]]
    data.recent = runs
    data.confidence = bins.get(run["run_id"], [0] * CONFIDENCE_BINS)
    data.confidence_before = [sum(bins[i][b] for i in ids if i != run["run_id"]) for b in range(CONFIDENCE_BINS)]


def _failures(data: ReportData, sql: _Sql, settings: ReportSettings) -> None:
    run_id = data.run["run_id"]
    data.failures_total = int(sql.rows("SELECT count(*) AS n FROM predictions WHERE run_id = ? AND status <> 'ok'",
                                       [run_id])[0]["n"])
    rows = sql.rows("SELECT video_uri, status, error FROM predictions WHERE run_id = ? AND status <> 'ok' "
                    "ORDER BY status = 'partial', video_uri LIMIT ?", [run_id, settings.failure_rows])
    data.failures = [(r["video_uri"], r["status"], r["error"]) for r in rows]


def _examples(data: ReportData, sql: _Sql, settings: ReportSettings) -> None:
    if settings.examples_per_label == 0:
        return
    run_id = data.run["run_id"]
    rows = sql.rows("""
        WITH labels AS (
          SELECT top1_label, count(*) AS videos FROM predictions
          WHERE run_id = $run AND status = 'ok' AND top1_label IS NOT NULL
          GROUP BY 1 ORDER BY videos DESC, top1_label LIMIT $labels),
        ranked AS (
          SELECT p.video_uri, p.top1_label, p.top1_score, p.duration_s, p.video_bytes, l.videos,
                 row_number() OVER (PARTITION BY p.top1_label ORDER BY p.top1_score DESC NULLS LAST, p.video_uri) AS r
          FROM predictions p JOIN labels l ON p.top1_label = l.top1_label
          WHERE p.run_id = $run AND p.status = 'ok'),
        top AS (SELECT * FROM ranked WHERE r <= $per_label),
        best AS (
          SELECT c.video_uri, c.start_s, c.end_s,
                 row_number() OVER (PARTITION BY c.video_uri
                                    ORDER BY (c.top1_label = t.top1_label) DESC, c.top1_score DESC NULLS LAST,
                                             c.clip_index) AS r
          FROM clip_predictions c JOIN top t ON c.video_uri = t.video_uri
          WHERE c.run_id = $run)
        SELECT t.*, b.start_s, b.end_s FROM top t LEFT JOIN best b ON b.video_uri = t.video_uri AND b.r = 1
        ORDER BY t.videos DESC, t.top1_label, t.r""",
                    {"run": run_id, "labels": settings.top_labels, "per_label": settings.examples_per_label})
    groups: dict[str, tuple[int, list[Example]]] = {}
    for r in rows:
        ex = Example(r["video_uri"], r["top1_label"], r["top1_score"], _middle(r["start_s"], r["end_s"], r["duration_s"]),
                     r["video_bytes"])
        groups.setdefault(r["top1_label"], (int(r["videos"]), []))[1].append(ex)
    data.examples = [(label, n, exs) for label, (n, exs) in groups.items()]


def _queue(data: ReportData, sql: _Sql, settings: ReportSettings) -> None:
    run_id = data.run["run_id"]
    data.queue_total = int(sql.rows("SELECT count(*) AS n FROM labeling_queue WHERE run_id = ?", [run_id])[0]["n"])
    if not data.queue_total:
        return
    rows = sql.rows("""
        WITH q AS (
          SELECT video_uri, reason, score, rank, top1_label, top1_score, margin, entropy FROM labeling_queue
          WHERE run_id = $run ORDER BY rank NULLS LAST, score DESC NULLS LAST, video_uri LIMIT $n),
        p AS (
          SELECT video_uri, any_value(duration_s) AS duration_s, any_value(video_bytes) AS video_bytes
          FROM predictions WHERE run_id = $run AND video_uri IN (SELECT video_uri FROM q) GROUP BY 1),
        best AS (
          SELECT c.video_uri, c.start_s, c.end_s,
                 row_number() OVER (PARTITION BY c.video_uri ORDER BY c.top1_score ASC NULLS LAST, c.clip_index) AS r
          FROM clip_predictions c WHERE c.run_id = $run AND c.video_uri IN (SELECT video_uri FROM q))
        SELECT q.*, p.duration_s, p.video_bytes, b.start_s, b.end_s FROM q
        LEFT JOIN p ON p.video_uri = q.video_uri LEFT JOIN best b ON b.video_uri = q.video_uri AND b.r = 1
        ORDER BY q.rank NULLS LAST, q.score DESC NULLS LAST, q.video_uri""", {"run": run_id, "n": settings.queue_rows})
    # the clip the model was least sure of: what a person should look at
    data.queue = [Example(r["video_uri"], r["top1_label"], r["top1_score"],
                          _middle(r["start_s"], r["end_s"], r["duration_s"]), r["video_bytes"],
                          {k: r[k] for k in ("reason", "score", "rank", "margin", "entropy")}) for r in rows]


def _evaluation(data: ReportData, lake: Lake, settings: ReportSettings) -> None:
    import pyarrow.parquet as pq

    name, ran = data.run["model_name"], data.run["model_version"]
    if not name:
        data.evaluation_note = "the run names no model"
        return
    try:
        record = lake.champion_record(name)
    except ConfigError:  # a model name the registry would refuse (a path-like name): no champion
        record = None
    version = record["version"] if record else None
    notes = []
    if version is None:
        notes.append(f"model {name!r} has no champion in this lake")
        if ran and lake.has_model(name, ran):
            version = ran  # the run's own version, when the registry knows it
    elif ran and version != ran:
        notes.append(f"this run used version {ran}; the champion is now {version}")
    metrics = lake.evaluation(name, version) if version else None
    if metrics is None:
        notes.append(f"no evaluation of {name}@{version} in this lake" if version else "no evaluation to show")
        data.evaluation_note = "; ".join(notes)
        return
    base = f"evaluations/{name}/{version}"
    per_class_bytes = lake.store.read_bytes(f"{base}/per_class.parquet")
    per_class = pq.read_table(io.BytesIO(per_class_bytes)).to_pylist() if per_class_bytes else []
    data.evaluation = Evaluation(name, version, metrics, per_class, lake.store.read_bytes(f"{base}/confusion.png"),
                                 record)
    data.evaluation_note = "; ".join(notes) or None


def gather(lake: str, run_id: str | None, settings: ReportSettings) -> ReportData:
    """Everything the page shows except the thumbnails' pixels. A section that cannot be built (a
    damaged evaluation file, a table with unexpected columns) is recorded in ``errors`` and shown
    as such; only a missing lake or run is an error here (``ConfigError``)."""
    lk = Lake(lake).require()
    sql = _Sql(lake, settings.timeout_s)
    try:
        data = ReportData(run=find_run(sql, lk.root, run_id))
        steps = [("counts", _counts), ("recent", _recent), ("failures", _failures), ("examples", _examples),
                 ("queue", _queue)]
        for section, step in steps:
            try:
                step(data, sql, settings)
            except Exception as e:  # noqa: BLE001 - one section must not take the page with it
                data.errors[section] = f"{type(e).__name__}: {e}"
                log.warning("report section %s could not be built: %s\n%s", section, e, traceback.format_exc())
    finally:
        sql.close()
    try:
        _evaluation(data, lk, settings)
    except Exception as e:  # noqa: BLE001
        data.errors["evaluation"] = f"{type(e).__name__}: {e}"
        log.warning("report section evaluation could not be built: %s", e)
    return data


def run_date_of(run: dict[str, Any]) -> date:
    value = run.get("run_date")
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return run["started_at"].date()
