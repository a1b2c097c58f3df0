"""Read-only SQL over the lake: DuckDB with ready views, no write, attach, install or settings.

Tables are registered as pyarrow datasets (scanned lazily, S3 through pyarrow's filesystem), so an
``s3://`` lake works offline without DuckDB's ``httpfs`` extension. After the views exist, external
file access is switched off and the configuration is locked; only SELECT statements are accepted.
"""

from __future__ import annotations

import os
from typing import Any

from actionrec.errors import ConfigError

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
    """An in-memory DuckDB connection with the lake's views, locked down for read-only use."""
    import duckdb

    from actionrec.lake import Lake

    lk = Lake(lake)
    con = duckdb.connect(":memory:")
    for name in ("predictions", "clip_predictions", "runs"):
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


def query(lake: str | os.PathLike, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of a read-only query over the lake views."""
    import duckdb

    check_read_only(sql)
    con = connect(lake)
    try:
        cur = con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.Error as e:
        raise ConfigError(f"query failed: {e}") from e
    finally:
        con.close()
