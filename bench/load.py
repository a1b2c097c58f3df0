"""Load: tag a generated archive of N short videos in one run, sampling the memory of the whole
process tree (flow + decode workers) as it goes.

    python -m bench.load --videos 2000

Exits non-zero when peak RSS passes --max-rss-mb or memory keeps growing (last quarter's median
more than --max-growth above the second quarter's): memory must stay flat however long the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import save


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def main(argv: list[str] | None = None) -> int:
    from actionrec.data.synth import SynthConfig, write_dataset
    from actionrec.lake.query import query
    from actionrec.models import build_model, save_checkpoint

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--shard-size", type=int, default=64)
    p.add_argument("--max-rss-mb", type=float, default=4096)
    p.add_argument("--max-growth", type=float, default=0.25)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        started = time.perf_counter()
        write_dataset(d / "archive", SynthConfig(per_class=-(-args.videos // 8), seed=1), progress=True)
        print(f"generated {args.videos} videos in {time.perf_counter() - started:.0f} s", flush=True)
        model = build_model("tiny3d", [f"c{i}" for i in range(8)])
        save_checkpoint(model, d / "model.pt", {"model_name": "load"})
        cmd = [sys.executable, "-m", "deployments.cli", "tag", str(d / "archive" / "videos"), "--lake", str(d / "lake"),
               "--model", str(d / "model.pt"), "--shard-size", str(args.shard_size)]
        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples: list[tuple[float, float, int]] = []  # (seconds, tree RSS MB, prediction files so far)
        while proc.poll() is None:
            files = len(list((d / "lake" / "predictions").rglob("*.parquet")))
            samples.append((time.perf_counter() - started, tree_rss_mb(proc.pid), files))
            time.sleep(0.5)
        wall = time.perf_counter() - started
        out = proc.stdout.read() if proc.stdout else ""
        if proc.returncode not in (0, 1):
            print(out)
            return proc.returncode
        row = json.loads(out.strip().splitlines()[-1])
        n = query(str(d / "lake"), "SELECT count(*) FROM latest_predictions")[1][0][0]
    shards = -(-args.videos // args.shard_size)
    tagging = [s for s in samples if 0 < s[2] < shards]  # while shards were being written
    quarter = max(len(tagging) // 4, 1)
    q2 = statistics.median(s[1] for s in tagging[quarter : 2 * quarter]) if len(tagging) >= 4 else 0.0
    q4 = statistics.median(s[1] for s in tagging[-quarter:]) if tagging else 0.0
    peak = max((s[1] for s in samples), default=0.0)
    result = {"videos": args.videos, "latest_rows": n, "ok": row["ok"], "failed": row["failed"], "wall_s": wall,
              "flow_seconds": row["seconds"], "videos_per_s": args.videos / row["seconds"], "peak_rss_mb": peak,
              "rss_q2_mb": q2, "rss_q4_mb": q4, "samples": samples}
    print(f"{args.videos} videos: {row['ok']} ok, {row['failed']} failed; flow {row['seconds']:.0f} s "
          f"({result['videos_per_s']:.1f} videos/s), process wall {wall:.0f} s")
    print(f"tree RSS: peak {peak:.0f} MB; median 2nd quarter {q2:.0f} MB, last quarter {q4:.0f} MB")
    print("results:", save("load", {"settings": vars(args), **result}))
    ok = n == args.videos and peak <= args.max_rss_mb and (q2 == 0 or q4 <= q2 * (1 + args.max_growth))
    print("memory flat and bounded" if ok else "FAILED: rows missing or memory not flat/bounded")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
