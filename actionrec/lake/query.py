"""Read-only SQL over the lake: DuckDB with ready views, no write, attach, install or settings.

Tables are registered as pyarrow datasets (scanned lazily, S3 through pyarrow's filesystem), so an
``s3://`` lake works offline without DuckDB's ``httpfs`` extension. After the views exist, external
file access is switched off and the configuration is locked; only SELECT statements are accepted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from actionrec.errors import ConfigError
from actionrec.lake.lake import Lake
from actionrec.lake.schema import RUN_TABLES

LATEST = """
CREATE VIEW latest_predictions AS
SELECT * EXCLUDE (_rank) FROM (
  SELECT *, row_number() OVER (
    PARTITION BY video_uri, model_name
    ORDER BY (status = 'ok') DESC, processed_at DESC, run_id DESC) AS _rank
  FROM predictions)
WHERE _rank = 1
"""


def connect(lake: str | os.PathLike) -> Any:
    """An in-memory DuckDB connection with the lake's views, locked down for read-only use.
    A location with no lake is a ``ConfigError`` (a mistyped path must not look like an empty lake)."""
    import duckdb

    lk = Lake(lake).require()
    con = duckdb.connect(":memory:")
    for name in RUN_TABLES:
        con.register(f"_{name}", lk.dataset(name))
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}")
    con.register("_evaluations", lk.evaluations())
    con.execute("CREATE VIEW evaluations AS SELECT * FROM _evaluations")
    con.execute(LATEST)
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


def query(lake: str | os.PathLike, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
          ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of a read-only query over the lake views. Values go in ``params``
    (``?`` or ``$name`` placeholders), never into the SQL text."""
    import duckdb

    check_read_only(sql)
    con = connect(lake)
    try:
        cur = con.execute(sql, params) if params is not None else con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.Error as e:
        raise ConfigError(f"query failed: {e}") from e
    finally:
        con.close()
