"""Archive throughput: short clips through the real tag flow against the model-only limit, per engine.

    python -m bench.archive --videos 200 --arch r2plus1d_18 --engines torch,auto

For each engine (``torch``: eager fp32, the old default; ``auto``: this machine's default, OpenVINO
on CPU) the model-only run feeds the same number of uint8 clips, in the same batch size, straight to
that engine's runner in this process; the tag flow runs as a user runs it (a subprocess of the CLI,
with a temporary Prefect server, ``--engine``). fraction = tag-flow clips/s over model-only clips/s:
how much of the decoding the pipeline hides behind the model; ``vs_first`` = tag-flow clips/s over
the first engine's; ``top1_agreement``: share of videos whose top-1 label equals the first engine's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import save

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from actionrec.data.synth import SynthConfig, write_dataset
    from actionrec.engines.choice import choose_engine
    from actionrec.engines.runners import open_runner
    from actionrec.lake.query import query
    from actionrec.models import build_model, save_checkpoint
    from actionrec.models.refs import load_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=200)
    p.add_argument("--arch", default="r2plus1d_18")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--decode-workers", type=int, default=2)
    p.add_argument("--clips", type=int, default=1, help="clips per video")
    p.add_argument("--engines", default="torch,auto", help="comma-separated; the first is the baseline")
    args = p.parse_args(argv)
    engines = args.engines.split(",")
    torch.manual_seed(0)
    model = build_model(args.arch, [str(i) for i in range(400)])
    spec = model.spec
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "archive"
        src.mkdir()
        real = sorted(SHARED.iterdir()) if SHARED.is_dir() else []
        n_real = min(len(real) * 20, args.videos // 2) if real else 0
        for i in range(n_real):
            f = real[i % len(real)]
            shutil.copy(f, src / f"real_{i:04d}{f.suffix}")
        gen = write_dataset(d / "gen", SynthConfig(per_class=-(-(args.videos - n_real) // 8), seed=3, size=128,
                                                   num_frames=160, fps=16))
        for i, f in enumerate(sorted((gen.parent / "videos").rglob("*.mp4"))[: args.videos - n_real]):
            shutil.move(f, src / f"gen_{i:04d}.mp4")
        save_checkpoint(model, d / "model.pt", {"model_name": "bench"})

        clips = np.random.default_rng(0).integers(
            0, 256, (args.batch_size, *spec.clip_shape), dtype=np.uint8)
        per_engine: dict[str, dict] = {}
        labels: dict[str, dict[str, str]] = {}
        for engine in engines:
            # Model only: the same number of clips, same batch size, already decoded and cropped.
            choice = choose_engine(engine, "auto", "cpu")
            runner = open_runner(load_model(str(d / "model.pt")), choice, batch_size=args.batch_size)
            runner.run(clips)  # warm-up (and, for OpenVINO, the one conversion: cached for the flow)
            started = time.perf_counter()
            for _ in range(-(-args.videos * args.clips // args.batch_size)):
                runner.run(clips)
            model_only = args.videos * args.clips / (time.perf_counter() - started)
            del runner
            lake = d / f"lake-{engine}"
            cmd = [sys.executable, "-m", "deployments.cli", "tag", str(src), "--lake", str(lake), "--model",
                   str(d / "model.pt"), "--batch-size", str(args.batch_size), "--decode-workers",
                   str(args.decode_workers), "--shard-size", str(args.videos), "--clips", str(args.clips),
                   "--engine", engine, "--json", "--quiet"]
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                                 "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
            if out.returncode not in (0, 1):
                print(out.stderr[-3000:])
                return out.returncode
            row = json.loads(out.stdout.strip().splitlines()[-1])
            labels[engine] = dict(query(str(lake), "SELECT video_uri, top1_label FROM predictions")[1])
            flow = (row["ok"] + row["partial"]) * args.clips / row["seconds"]
            per_engine[engine] = {"choice": str(choice), "model_only_clips_per_s": model_only,
                                  "tag_flow_clips_per_s": flow, "fraction_of_model_only": flow / model_only,
                                  "run": row}
    base = engines[0]
    for engine, r in per_engine.items():
        same = [labels[engine].get(u) == label for u, label in labels[base].items()]
        r["vs_first"] = r["tag_flow_clips_per_s"] / per_engine[base]["tag_flow_clips_per_s"]
        r["top1_agreement"] = sum(same) / max(len(same), 1)
    result = {"videos": args.videos, "real_clips": n_real, "arch": args.arch, "batch_size": args.batch_size,
              "decode_workers": args.decode_workers, "clips": args.clips, "engines": per_engine}
    print(f"{args.videos} videos ({n_real} real), {args.arch}, batch {args.batch_size}, "
          f"{args.decode_workers} decode workers, {args.clips} clip(s) per video")
    for engine, r in per_engine.items():
        print(f"{engine:>9} ({r['choice']}): model only {r['model_only_clips_per_s']:.2f} clips/s; tag flow "
              f"{r['tag_flow_clips_per_s']:.2f} clips/s = {r['fraction_of_model_only']:.2f} of model-only, "
              f"{r['vs_first']:.2f}x {base}; top-1 agreement with {base} {r['top1_agreement']:.1%}")
    print("results:", save(f"archive_engines_{args.arch}", {"settings": vars(args), **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
