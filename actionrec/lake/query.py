"""Read-only SQL over the lake: DuckDB with ready views, no write, attach, install or settings.

Tables are registered as pyarrow datasets (scanned lazily, S3 through pyarrow's filesystem), so an
``s3://`` lake works offline without DuckDB's ``httpfs`` extension. After the views exist, external
file access is switched off and the configuration is locked; only SELECT statements are accepted.
A query runs under a memory limit and a time limit (``QueryLimits``), and DuckDB gets no temporary
directory: nothing spills to disk, so nothing on disk is readable through it either.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actionrec.errors import ConfigError
from actionrec.lake.lake import Lake
from actionrec.lake.schema import TABLES
from actionrec.options import check_int, check_positive_seconds, option


class QueryLimitError(ConfigError):
    """A query was stopped by its memory or time limit."""


@dataclass(frozen=True)
class QueryLimits:
    memory_mb: int = option(2048, "memory a query may use, in MB; past it the query stops and says so",
                            flag="--memory-limit")
    timeout_s: float = option(300.0, "seconds a query may run; past it the query stops and says so",
                              flag="--timeout")

    def __post_init__(self) -> None:
        check_int("QueryLimits", "memory_mb", self.memory_mb, 16)
        check_positive_seconds("QueryLimits", "timeout_s", self.timeout_s)


NO_LIMITS_GIVEN = QueryLimits()

LATEST = """
CREATE VIEW latest_predictions AS
SELECT * EXCLUDE (_rank) FROM (
  SELECT *, row_number() OVER (
    PARTITION BY video_uri, model_name
    ORDER BY (status = 'ok') DESC, processed_at DESC, run_id DESC) AS _rank
  FROM predictions)
WHERE _rank = 1
"""
# The latest embedding of each video by each model version (``actionrec similar`` reads it). A semi
# join on the latest run, not a window: the vectors are never sorted, only streamed.
LATEST_EMBEDDINGS = """
CREATE VIEW latest_embeddings AS
SELECT e.* FROM embeddings e SEMI JOIN (
  SELECT video_uri, model_name, model_version, max(run_id) AS run_id FROM embeddings GROUP BY ALL) latest
USING (video_uri, model_name, model_version, run_id)
"""

# One row per tag run: how its label and confidence mix compared with the runs before it
# (actionrec.loop.drift); the divergences are null where nothing was compared.
DRIFT = """
CREATE VIEW drift AS
SELECT run_id, started_at, model_name, model_version, ok + partial AS videos, drift_measure, drift_labels,
       drift_confidence, drift_flag, drift_reason
FROM runs
WHERE flow = 'tag'
ORDER BY started_at, run_id
"""


LABEL_RULE = ("each annotator's latest answer for a video is one vote; the label with most votes wins, "
              "and a tie goes to the most recent answer")
# The rule, once, in SQL over the `labels` table (the `latest_labels` view and every reader use it).
# An answer without an annotator votes as its import (two anonymous CSVs are two voters).
LATEST_LABELS_SQL = """
WITH answers AS (
  SELECT * EXCLUDE (_rank) FROM (
    SELECT *, coalesce(annotator, 'import:' || import_id) AS voter,
           row_number() OVER (PARTITION BY video_uri, coalesce(annotator, 'import:' || import_id)
                              ORDER BY labeled_at DESC, imported_at DESC, label) AS _rank
    FROM labels)
  WHERE _rank = 1),
votes AS (
  SELECT video_uri, label, count(*) AS votes, max(labeled_at) AS last_labeled_at,
         arg_max(voter, labeled_at) AS last_voter
  FROM answers GROUP BY video_uri, label),
pinned AS (  -- the latest split any answer pinned the video to
  SELECT video_uri, arg_max(split, labeled_at) AS split FROM labels WHERE split IS NOT NULL GROUP BY video_uri),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY video_uri ORDER BY votes DESC, last_labeled_at DESC, label) AS _rank,
         count(*) OVER (PARTITION BY video_uri) AS labels_given,
         sum(votes) OVER (PARTITION BY video_uri) AS answers
  FROM votes)
SELECT r.video_uri, r.label, r.votes, CAST(r.answers AS BIGINT) AS answers, r.labels_given > 1 AS conflict,
       r.last_labeled_at AS labeled_at, r.last_voter AS annotator, p.split
FROM ranked r LEFT JOIN pinned p ON p.video_uri = r.video_uri WHERE r._rank = 1
"""


# What is still waiting for a person: queued, and no answer yet.
OPEN_QUEUE = """
CREATE VIEW open_queue AS
SELECT * FROM labeling_queue WHERE video_uri NOT IN (SELECT video_uri FROM labels)
"""


def connect(lake: str | os.PathLike, limits: QueryLimits = NO_LIMITS_GIVEN) -> Any:
    """An in-memory DuckDB connection with the lake's views, locked down for read-only use.
    A location with no lake is a ``ConfigError`` (a mistyped path must not look like an empty lake)."""
    import duckdb

    lk = Lake(lake).require()
    con = duckdb.connect(":memory:", config={"memory_limit": f"{limits.memory_mb}MB", "temp_directory": ""})
    for name in TABLES:
        con.register(f"_{name}", lk.dataset(name))
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}")
    con.register("_evaluations", lk.evaluations())
    con.execute("CREATE VIEW evaluations AS SELECT * FROM _evaluations")
    con.execute(LATEST)
    con.execute(f"CREATE VIEW latest_labels AS {LATEST_LABELS_SQL}")
    con.execute(OPEN_QUEUE)
    con.execute(DRIFT)
    con.execute(LATEST_EMBEDDINGS)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_read_only(sql: str) -> None:
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise ConfigError(f"SQL does not parse: {e}") from e
    if not statements:
        raise ConfigError("empty SQL")
    for st in statements:
        if st.type != duckdb.StatementType.SELECT:
            kind = str(st.type).rsplit(".", 1)[-1]
            raise ConfigError(f"only read-only SELECT queries are allowed here (got {kind})")


def query(lake: str | os.PathLike, sql: str, params: Sequence[Any] | dict[str, Any] | None = None,
          limits: QueryLimits = NO_LIMITS_GIVEN) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of a read-only query over the lake views. Values go in ``params``
    (``?`` or ``$name`` placeholders), never into the SQL text."""
    check_read_only(sql)
    con = connect(lake, limits)
    try:
        return execute(con, sql, params, limits)
    finally:
        con.close()


def execute(con: Any, sql: str, params: Sequence[Any] | dict[str, Any] | None = None,
            limits: QueryLimits = NO_LIMITS_GIVEN) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one query on a connection made by ``connect``, under the time limit
    of ``limits`` (its memory limit was set when connecting); DuckDB's errors become ours."""
    import duckdb

    check_read_only(sql)
    timer = threading.Timer(limits.timeout_s, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        cur = con.execute(sql, params) if params is not None else con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.InterruptException as e:
        raise QueryLimitError(f"the query was stopped at its time limit of {limits.timeout_s:g} s "
                              "(--timeout raises it)") from e
    except duckdb.OutOfMemoryException as e:
        raise QueryLimitError(f"the query needed more than its memory limit of {limits.memory_mb} MB "
                              "(--memory-limit raises it)") from e
    except duckdb.Error as e:
        raise ConfigError(f"query failed: {e}") from e
    finally:
        timer.cancel()
