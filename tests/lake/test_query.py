"""``actionrec query``: read-only SQL, whatever the statement tries."""

from __future__ import annotations

import pytest

from actionrec.errors import ConfigError
from actionrec.lake.lake import Lake
from actionrec.lake.query import query


@pytest.mark.parametrize("sql", ["COPY (SELECT 1) TO '/tmp/x.csv'", "ATTACH '/tmp/x.db'", "INSTALL httpfs",
                                 "SET threads = 1", "CREATE TABLE t (a INT)",
                                 "SELECT * FROM read_csv('/etc/passwd')"])
def test_query_is_read_only(tmp_path, sql):
    Lake(tmp_path / "lake").store.write_bytes("runs/keep.txt", b"")  # a lake exists: the refusal is the SQL's
    with pytest.raises(ConfigError, match="read-only|query failed"):
        query(str(tmp_path / "lake"), sql)


def test_a_query_past_its_time_or_memory_limit_stops_and_says_so(tmp_path):
    """Reported: ``range(1e12)`` ran until killed; ``range(2e7)`` took 2.4 GB."""
    import time

    from actionrec.lake.query import QueryLimitError, QueryLimits

    Lake(tmp_path / "lake").store.write_bytes("runs/keep.txt", b"")
    started = time.monotonic()
    with pytest.raises(QueryLimitError, match="time limit of 1 s"):
        query(str(tmp_path / "lake"), "SELECT count(*) FROM range(1000000000000)", limits=QueryLimits(timeout_s=1))
    assert time.monotonic() - started < 10
    with pytest.raises(QueryLimitError, match="memory limit of 64 MB"):
        query(str(tmp_path / "lake"), "SELECT list(range) FROM range(20000000)", limits=QueryLimits(memory_mb=64))


def test_duckdbs_temporary_files_are_not_readable_from_sql(tmp_path, monkeypatch):
    """DuckDB may read its own temporary directory even with external access off: it gets none."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "spill.csv").write_text("secret\n42\n")
    Lake(tmp_path / "lake").store.write_bytes("runs/keep.txt", b"")
    with pytest.raises(ConfigError, match="query failed"):
        query(str(tmp_path / "lake"), "SELECT * FROM read_csv('.tmp/spill.csv')")
