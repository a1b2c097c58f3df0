"""The Parquet lake: predictions, clip timelines, runs, the model registry and evaluations.

Layout under a folder or ``s3://bucket/prefix`` (see ../shared/DESIGN.md)::

    predictions/run_date=YYYY-MM-DD/<run_id>-<shard>.parquet
    clip_predictions/run_date=YYYY-MM-DD/<run_id>-<shard>.parquet
    runs/run_date=YYYY-MM-DD/<run_id>.parquet
    models/<model_name>/<version>/model.pt, card.json      (immutable once written)
    models/<model_name>/champion.json                     {"version": ..., "promoted_at": ..., "by": ...}
    models/<model_name>/history/<time>-<version>.json     one file per promotion (who, when, why)
    evaluations/<model_name>/<version>/metrics.parquet, per_class.parquet, report.md, confusion.png

File names are deterministic per (run, shard), so a retried shard overwrites its own file. This
module knows storage and tables only: it loads no model and imports no torch.
"""

from __future__ import annotations

import getpass
import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from actionrec.errors import ConcurrentUpdateError, ConfigError, ModelError, StorageError
from actionrec.io.storage import Store
from actionrec.lake.schema import EVALUATIONS, PARTITIONS, RUNS, TABLES
from actionrec.names import check_name

UTC = timezone.utc
log = logging.getLogger(__name__)
QUARANTINE = "_quarantine"
LAKE_ENV = "ACTIONREC_LAKE"
DEFAULT_LAKE = "./actionrec-lake"


def default_lake() -> str:
    """The lake used when none is given: ``$ACTIONREC_LAKE``, else ``./actionrec-lake``."""
    return os.environ.get(LAKE_ENV) or DEFAULT_LAKE


def _damage(path: str, fs: Any, schema: pa.Schema) -> str | None:
    """Why a file is not a whole Parquet file of ``schema`` (its columns known and typed alike; older
    files may lack newer columns), or None. Reads the footer only."""
    try:
        found = pq.read_schema(path, filesystem=fs)
    except Exception as e:  # noqa: BLE001 - truncated, empty, text: all mean the same here
        return f"not a readable Parquet file ({type(e).__name__}: {str(e)[:120]})"
    strangers = [f.name for f in found if f.name not in schema.names or schema.field(f.name).type != f.type]
    if strangers:
        return f"holds columns that are not this table's: {', '.join(strangers[:5])}"
    if not found.names:
        return "holds no columns"
    return None


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def who() -> str:
    """Who is acting, for the promotion history: ``$ACTIONREC_USER``, else the login name."""
    try:
        return os.environ.get("ACTIONREC_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


@dataclass(frozen=True)
class Promotion:
    """One change of champion: what became champion, what it replaced, who, when and why."""

    model_name: str
    version: str
    previous: str | None
    promoted_at: str  # ISO 8601, UTC
    by: str
    reason: str
    rollback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "version": self.version, "previous": self.previous,
                "promoted_at": self.promoted_at, "by": self.by, "reason": self.reason, "rollback": self.rollback}


class Lake:
    """One lake root; every method takes and returns small values (ids, URIs, tables)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.store = Store(root if root is not None else default_lake())
        self.root = self.store.root
        self.damaged: dict[str, str] = {}  # lake files skipped because they are not whole files of their table

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- the lake itself -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.store.root_exists()

    def require(self) -> Lake:
        """This lake, or a ``ConfigError`` when there is none at its location (a mistyped path)."""
        if not self.exists():
            raise ConfigError(f"no lake at {self.root} (nothing there yet: check --lake, or run `actionrec tag` "
                              "or `actionrec retrain` to create it)")
        return self

    def check_writable(self) -> Lake:
        """Refuse a local lake location that exists but is not a folder."""
        if not self.store.is_s3 and self.store.path.exists() and not self.store.path.is_dir():
            raise ConfigError(f"the lake location {self.root} is a file, not a folder")
        return self

    # -- predictions and runs -------------------------------------------------------------------
    def write_shard(self, run_id: str, run_date: date, shard: int, predictions: pa.Table, clips: pa.Table) -> list[str]:
        """Write one shard's two files; the names depend only on (run, shard), so a retry overwrites."""
        check_name("run id", run_id)
        name = f"{run_id}-{shard:05d}.parquet"
        part = f"run_date={run_date.isoformat()}"
        return [
            self.store.write_bytes(f"predictions/{part}/{name}", parquet_bytes(predictions)),
            self.store.write_bytes(f"clip_predictions/{part}/{name}", parquet_bytes(clips)),
        ]

    def write_part(self, name: str, key: str, day: date, table: pa.Table) -> str:
        """Write one whole file of a partitioned table (``<name>/<partition>=<day>/<key>.parquet``);
        ``key`` depends only on what produced it (run and shard, an import), so a retry overwrites."""
        check_name(f"{name} file name", key)
        partition = PARTITIONS[name].name
        return self.store.write_bytes(f"{name}/{partition}={day.isoformat()}/{key}.parquet",
                                      parquet_bytes(table.cast(TABLES[name])))

    def write_run(self, row: dict[str, Any], run_date: date) -> str:
        check_name("run id", row["run_id"])
        table = pa.Table.from_pylist([row], RUNS)
        return self.store.write_bytes(f"runs/run_date={run_date.isoformat()}/{row['run_id']}.parquet",
                                      parquet_bytes(table))

    def _files(self, name: str, schema: pa.Schema, suffix: str = ".parquet") -> list[str]:
        """The table's files that are whole Parquet files of its schema. The others are skipped with a
        warning that names them, and kept in ``self.damaged`` (URI -> reason): one damaged file must
        never block a night's run or a query, and its videos are simply not counted as done."""
        files = [v.uri for v in self.store.list(name) if v.uri.endswith(suffix)]
        fs, paths, _ = self._paths(files, name)
        good = []
        for uri, path in zip(files, paths, strict=True):
            reason = _damage(path, fs, schema)
            if reason is None:
                good.append(uri)
            elif uri not in self.damaged:
                self.damaged[uri] = reason
                log.warning("skipping damaged lake file %s: %s (actionrec lake check --quarantine moves it aside)",
                            uri, reason)
        return good

    def dataset(self, name: str) -> Any:
        """A lazily scanned pyarrow dataset of a partitioned table (its partition column a DATE), or
        an empty table."""
        import pyarrow.dataset as ds

        schema = TABLES[name].append(PARTITIONS[name])
        files = self._files(name, TABLES[name])
        if not files:
            return schema.empty_table()
        fs, paths, base = self._paths(files, name)
        partitioning = ds.partitioning(pa.schema([PARTITIONS[name]]), flavor="hive")
        return ds.dataset(paths, schema=schema, format="parquet", filesystem=fs, partitioning=partitioning,
                          partition_base_dir=base)

    def check(self) -> dict[str, str]:
        """Every damaged file in the lake's tables: URI -> reason."""
        for name, schema in TABLES.items():
            self._files(name, schema)
        self._files("evaluations", EVALUATIONS, "/metrics.parquet")
        return dict(self.damaged)

    def quarantine(self, uri: str) -> str:
        """Move a damaged file to ``_quarantine/`` under the same relative path; returns its new URI."""
        rel = self._relative(uri)
        data = self.store.read_bytes(rel)
        if data is None:
            raise StorageError(f"{uri} is gone")
        target = self.store.write_bytes(f"{QUARANTINE}/{rel}", data)
        self.store.delete(rel)
        self.damaged.pop(uri, None)
        return target

    def _relative(self, uri: str) -> str:
        from actionrec.io.uris import local_path

        if self.store.is_s3:
            return uri.removeprefix(self.root + "/")
        return local_path(uri).relative_to(self.store.path).as_posix()

    def _paths(self, files: list[str], name: str) -> tuple[Any, list[str], str]:
        if self.store.is_s3:
            from actionrec.io.s3 import arrow_filesystem

            return arrow_filesystem(), [f.removeprefix("s3://") for f in files], self.root.removeprefix("s3://") + "/" + name
        from actionrec.io.uris import local_path

        return None, [str(local_path(f)) for f in files], f"{self.root}/{name}"

    def table(self, name: str, columns: list[str] | None = None, filter: Any = None) -> pa.Table:
        data = self.dataset(name)
        if isinstance(data, pa.Table):  # no files yet
            return data.select(columns) if columns else data
        return data.to_table(columns=columns, filter=filter)

    def done(self, model_name: str, model_version: str) -> set[tuple[str, str]]:
        """(video_uri, video_etag) already tagged ``ok`` by this model (name and version): work to skip.

        Both parts count: two models may share a version string (every ``torchvision:`` reference
        has ``KINETICS400_V1``), and one must never skip what only the other has tagged.
        """
        import pyarrow.dataset as ds

        wanted = ((ds.field("model_name") == model_name) & (ds.field("model_version") == model_version)
                  & (ds.field("status") == "ok"))
        t = self.table("predictions", ["video_uri", "video_etag"], filter=wanted)
        return set(zip(t.column("video_uri").to_pylist(), t.column("video_etag").to_pylist(), strict=True))

    def embedded(self, model_name: str, model_version: str) -> set[tuple[str, str]]:
        """(video_uri, video_etag) whose embedding by this model (name and version) is in the lake."""
        import pyarrow.dataset as ds

        wanted = (ds.field("model_name") == model_name) & (ds.field("model_version") == model_version)
        t = self.table("embeddings", ["video_uri", "video_etag"], filter=wanted)
        return set(zip(t.column("video_uri").to_pylist(), t.column("video_etag").to_pylist(), strict=True))

    # -- the model registry ---------------------------------------------------------------------
    def register_model(self, name: str, checkpoint: str | os.PathLike, version: str,
                       card: dict[str, Any] | None = None) -> str:
        """Copy a checkpoint into ``models/<name>/<version>/`` (immutable: an existing version is kept)."""
        check_name("model name", name)
        check_name("model version", version)
        if not self.store.exists(f"models/{name}/{version}/model.pt"):
            if card is not None:
                meta = {**card, "name": name, "version": version}
                self.store.write_bytes(f"models/{name}/{version}/card.json",
                                       json.dumps(meta, indent=2, default=str).encode())
            self.store.write_file(f"models/{name}/{version}/model.pt", Path(checkpoint))
        return version

    def has_model(self, name: str, version: str) -> bool:
        return self.store.exists(f"models/{check_name('model name', name)}/{check_name('model version', version)}/model.pt")

    @contextmanager
    def model_file(self, name: str, version: str) -> Iterator[Path]:
        """A local path to the checkpoint of ``name@version`` (downloaded for the block on S3)."""
        rel = f"models/{check_name('model name', name)}/{check_name('model version', version)}/model.pt"
        with self.store.local_copy(rel) as path:
            if path is None:
                raise ModelError(f"model {name}@{version} is not in lake {self.root}")
            yield path

    def card(self, name: str, version: str) -> dict[str, Any] | None:
        data = self.store.read_bytes(f"models/{check_name('model name', name)}/{check_name('model version', version)}"
                                     "/card.json")
        return json.loads(data) if data else None

    def model_names(self) -> list[str]:
        names = {v.uri.split("/models/", 1)[1].split("/", 1)[0] for v in self.store.list("models")
                 if "/models/" in v.uri}
        return sorted(names)

    def versions(self, name: str) -> list[str]:
        """Versions of ``name`` in the registry, oldest first (by the time their checkpoint was written)."""
        found: dict[str, str] = {}
        for obj in self.store.list(f"models/{check_name('model name', name)}"):
            parts = obj.uri.rsplit("/", 2)
            if parts[-1] == "model.pt":
                card = self.card(name, parts[-2]) or {}
                found[parts[-2]] = str(card.get("created_at") or "")
        return sorted(found, key=lambda v: (found[v], v))

    def champion(self, name: str) -> str | None:
        record = self.champion_record(name)
        return record["version"] if record else None

    def champion_record(self, name: str) -> dict[str, Any] | None:
        data = self.store.read_bytes(f"models/{check_name('model name', name)}/champion.json")
        return json.loads(data) if data else None

    def promote(self, name: str, version: str, *, reason: str, by: str | None = None,
                expected: str | None | bool = False, rollback: bool = False) -> Promotion:
        """Make ``version`` the champion with one atomic write of ``champion.json``, and record the change.

        ``expected``: the champion this decision was made against (None: no champion). When given,
        the switch happens only if that is still the champion, so two runs that both evaluated
        against the same champion cannot both win: the second gets ``ConcurrentUpdateError``.
        """
        check_name("model name", name)
        check_name("model version", version)
        if not self.has_model(name, version):
            raise ModelError(f"cannot promote {name}@{version}: no such model in {self.root}")
        rel = f"models/{name}/champion.json"
        current_bytes = self.store.read_bytes(rel)
        current = json.loads(current_bytes)["version"] if current_bytes else None
        if expected is not False and current != expected:
            raise ConcurrentUpdateError(f"the champion of {name} changed to {current} (expected {expected}) "
                                        "while this decision was made")
        event = Promotion(name, version, current, datetime.now(UTC).isoformat(), by or who(), reason, rollback)
        payload = json.dumps({"version": version, "promoted_at": event.promoted_at, "by": event.by,
                              "reason": reason, "previous": current}).encode()
        if not self.store.compare_and_swap(rel, current_bytes, payload):
            raise ConcurrentUpdateError(f"another run changed the champion of {name} at the same moment")
        stamp = event.promoted_at.replace("-", "").replace(":", "").replace("+0000", "Z")
        self.store.write_bytes(f"models/{name}/history/{stamp}-{version}.json", json.dumps(event.to_dict()).encode())
        return event

    def history(self, name: str) -> list[Promotion]:
        """Every change of champion of ``name``, oldest first."""
        events = []
        for obj in self.store.list(f"models/{check_name('model name', name)}/history"):
            data = self.store.read_bytes(f"models/{name}/history/{obj.uri.rsplit('/', 1)[-1]}")
            if data:
                events.append(Promotion(**json.loads(data)))
        return sorted(events, key=lambda e: e.promoted_at)

    def rollback(self, name: str, *, reason: str = "rollback", by: str | None = None) -> Promotion:
        """Give the champion role back to the model the current champion replaced (its last promotion
        that was not itself a rollback), so repeated rollbacks walk back through the history."""
        current = self.champion(name)
        if current is None:
            raise ConfigError(f"model {name!r} has no champion in lake {self.root}: nothing to roll back")
        replaced = [e for e in self.history(name) if e.version == current and not e.rollback]
        target = replaced[-1].previous if replaced else None
        if target is None:
            raise ConfigError(f"{name}@{current} replaced no earlier champion: nothing to roll back to")
        return self.promote(name, target, reason=reason, by=by, expected=current, rollback=True)

    # -- evaluations -------------------------------------------------------------------------------
    def evaluation_uri(self, name: str, version: str, file: str) -> str:
        return self.store.uri(f"evaluations/{check_name('model name', name)}/{check_name('model version', version)}/{file}")

    def write_evaluation(self, name: str, version: str, row: dict[str, Any], per_class: pa.Table,
                         files: dict[str, Path]) -> str:
        """metrics.parquet (one row), per_class.parquet and the report files of one evaluation."""
        base = f"evaluations/{check_name('model name', name)}/{check_name('model version', version)}"
        for fname, path in files.items():
            self.store.write_file(f"{base}/{fname}", path)
        self.store.write_bytes(f"{base}/per_class.parquet", parquet_bytes(per_class))
        return self.store.write_bytes(f"{base}/metrics.parquet", parquet_bytes(pa.Table.from_pylist([row], EVALUATIONS)))

    def evaluations(self) -> Any:
        """All evaluations' metrics rows, as a lazily scanned dataset (or an empty table)."""
        import pyarrow.dataset as ds

        files = self._files("evaluations", EVALUATIONS, "/metrics.parquet")
        if not files:
            return EVALUATIONS.empty_table()
        fs, paths, _ = self._paths(files, "evaluations")
        return ds.dataset(paths, schema=EVALUATIONS, format="parquet", filesystem=fs)

    def evaluation(self, name: str, version: str) -> dict[str, Any] | None:
        """The metrics row of one version's evaluation, or None."""
        data = self.store.read_bytes(f"evaluations/{check_name('model name', name)}/"
                                     f"{check_name('model version', version)}/metrics.parquet")
        if data is None:
            return None
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        return rows[0] if rows else None

    def mark_promoted(self, name: str, version: str) -> None:
        """Set ``promoted`` on a version's evaluation row (rewritten whole)."""
        rel = f"evaluations/{check_name('model name', name)}/{check_name('model version', version)}/metrics.parquet"
        data = self.store.read_bytes(rel)
        if data is None:
            return
        table = pq.read_table(io.BytesIO(data))
        table = table.set_column(table.schema.get_field_index("promoted"), "promoted",
                                 pa.array([True] * table.num_rows, pa.bool_()))
        self.store.write_bytes(rel, parquet_bytes(table))
