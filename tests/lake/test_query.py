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
