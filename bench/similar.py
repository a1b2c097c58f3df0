"""Find more like this on a big lake: N generated embeddings (512-d, and the size of the default
model's), written with the lake's own writer in a few files, then ``similar`` and ``more_like``
timed cold (a fresh connection: views opened, files listed and checked) and warm (one connection
reused), and DuckDB's two cosine functions compared on the same scan.

    python -m bench.similar --vectors 100000

Every query's answer is checked: each video has one planted near-copy, which must come first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import save

MODEL, VERSION = "bench", "v1"


def default_dim() -> int:
    """The embedding size of the default model (``actionrec train``'s architecture, default width)."""
    from actionrec.engines.features import head_module
    from actionrec.models import build_model
    from actionrec.training.config import TrainConfig

    arch = TrainConfig().arch
    return int(head_module(build_model(arch, ["a", "b"]).module, arch).in_features)


def write_lake(root: Path, n: int, dim: int, files: int, seed: int = 0) -> float:
    """``n`` unit vectors in ``files`` files; vector 2i+1 is a near-copy of vector 2i. Seconds taken."""
    import pyarrow as pa

    from actionrec.lake.lake import Lake
    from actionrec.lake.schema import EMBEDDINGS

    rng = np.random.default_rng(seed)
    lake = Lake(root)
    started = time.perf_counter()
    bounds = np.linspace(0, n, files + 1).astype(int)
    for f, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        count = hi - lo
        base = rng.standard_normal((count, dim), dtype=np.float32)
        base[1::2] = base[0::2][: count // 2] + 0.3 * rng.standard_normal((count // 2, dim), dtype=np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        offsets = pa.array(np.arange(0, count * dim + 1, dim, dtype=np.int32))
        run_id = f"20250101T000000Z-{f:08x}"
        table = pa.table({
            "run_id": [run_id] * count, "video_uri": [uri(i) for i in range(lo, hi)],
            "video_etag": [f"etag-{i}" for i in range(lo, hi)], "model_name": [MODEL] * count,
            "model_version": [VERSION] * count, "dim": pa.array([dim] * count, pa.int32()),
            "embedding": pa.ListArray.from_arrays(offsets, pa.array(base.ravel()))}, schema=EMBEDDINGS)
        lake.write_part("embeddings", f"{run_id}-{f:05d}", date(2025, 1, 1), table)
    return time.perf_counter() - started


def uri(i: int) -> str:
    return f"s3://archive/videos/{i // 1000:04d}/{i:08d}.mp4"


def timed(fn: Any, repeat: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return times, out


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def bench_dim(n: int, dim: int, files: int, k: int, repeat: int, examples: int) -> dict[str, Any]:
    from actionrec.lake.query import connect
    from actionrec.lake.similar import more_like, similar

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lake"
        write_s = write_lake(root, n, dim, files)
        size_mb = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 2**20
        probes = iter([2 * int(i) for i in np.random.default_rng(1).integers(0, n // 2, 2 * repeat)])

        def search(con: Any = None) -> None:
            probe = next(probes)
            found = similar(root, uri(probe), k, con=con)
            assert found[0].video_uri == uri(probe + 1), "the planted near-copy must come first"

        cold, _ = timed(search, repeat)
        con = connect(root)
        try:
            similar(root, uri(0), k, con=con)  # the first scan through this connection
            warm, _ = timed(lambda: search(con), repeat)
            chosen = [uri(2 * i) for i in range(examples)]
            by_max, got = timed(lambda: more_like(root, chosen, k, con=con), repeat)
            assert {n_.video_uri for n_ in got[: examples]} == {uri(2 * i + 1) for i in range(examples)}
            by_mean, _ = timed(lambda: more_like(root, chosen, k, how="mean", con=con), repeat)
            functions = compare_functions(con, dim, repeat)
        finally:
            con.close()
    return {"dim": dim, "vectors": n, "files": files, "parquet_mb": round(size_mb, 1), "write_s": write_s,
            "similar_cold": summary(cold), "similar_warm": summary(warm),
            f"more_like_{examples}_max_warm": summary(by_max), f"more_like_{examples}_mean_warm": summary(by_mean),
            "functions_warm": functions}


def compare_functions(con: Any, dim: int, repeat: int) -> dict[str, dict[str, float]]:
    """The same top-10 scan with ``list_cosine_similarity`` on the stored lists and with
    ``array_cosine_similarity`` on ``FLOAT[dim]`` casts, taking turns (so a busy moment on a shared
    machine falls on both), twice ``repeat`` times each."""
    from actionrec.lake.query import execute

    query = execute(con, "SELECT embedding FROM embeddings WHERE video_uri = ?", [uri(0)])[1][0][0]
    sql = {
        "list_cosine_similarity": "list_cosine_similarity(embedding, $q::FLOAT[])",
        "array_cosine_similarity": f"array_cosine_similarity(embedding::FLOAT[{int(dim)}], $q::FLOAT[{int(dim)}])",
    }
    times: dict[str, list[float]] = {name: [] for name in sql}
    for _ in range(2 * repeat):
        for name, expr in sql.items():
            text = (f"SELECT video_uri, {expr} AS score FROM latest_embeddings WHERE model_name = $m "
                    "AND model_version = $v ORDER BY score DESC LIMIT 10")
            took, (_, rows) = timed(lambda t=text: execute(con, t, {"q": query, "m": MODEL, "v": VERSION}), 1)
            assert [r[0] for r in rows[:2]] == [uri(0), uri(1)]  # the query itself, then its near-copy
            times[name] += took
    return {name: summary(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vectors", type=int, default=100_000)
    p.add_argument("--dims", type=int, nargs="*", default=None, help="default: 512 and the default model's size")
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--examples", type=int, default=8, help="example videos given to more_like")
    p.add_argument("--name", default=None, help="result file name (default: similar_<N/1000>k)")
    args = p.parse_args(argv)
    dims = args.dims or [512, default_dim()]
    results = []
    for dim in dims:
        r = bench_dim(args.vectors, dim, args.files, args.k, args.repeat, args.examples)
        results.append(r)
        print(f"{dim:>4}-d x {args.vectors}: {r['parquet_mb']} MB in {args.files} files (written in "
              f"{r['write_s']:.1f} s); similar cold {r['similar_cold']['median_s']:.2f} s, warm "
              f"{r['similar_warm']['median_s']:.2f} s; more_like({args.examples}) max "
              f"{r[f'more_like_{args.examples}_max_warm']['median_s']:.2f} s, mean "
              f"{r[f'more_like_{args.examples}_mean_warm']['median_s']:.2f} s; list_cosine "
              f"{r['functions_warm']['list_cosine_similarity']['median_s']:.2f} s vs array_cosine "
              f"{r['functions_warm']['array_cosine_similarity']['median_s']:.2f} s", flush=True)
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    path = save(args.name or f"similar_{args.vectors // 1000}k",
                {"settings": vars(args), "load_average_1min": load, "results": results})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
