"""Archive throughput: short clips through the real tag flow against the model-only limit.

    python -m bench.archive --videos 200 --arch r2plus1d_18

The model-only run feeds the same number of preprocessed clips, in the same batch size, straight to
the same model in this process; the tag flow runs as a user runs it (a subprocess of the CLI, with
a temporary Prefect server). fraction = tag-flow clips/s over model-only clips/s: how much of the
decoding the pipeline hides behind the model.
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
    import torch

    from actionrec.data.synth import SynthConfig, write_dataset
    from actionrec.data.transforms import normalize_ncthw
    from actionrec.models import build_model, save_checkpoint

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=200)
    p.add_argument("--arch", default="r2plus1d_18")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--decode-workers", type=int, default=2)
    args = p.parse_args(argv)
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

        # Model only: the same number of clips, same batch size, already preprocessed.
        clips = torch.randint(0, 255, (args.batch_size, spec.frames_per_clip, spec.crop_size, spec.crop_size, 3),
                              dtype=torch.uint8)
        module = model.module.eval()
        with torch.inference_mode():
            module(normalize_ncthw(clips, spec))  # warm-up
            started = time.perf_counter()
            for _ in range(-(-args.videos // args.batch_size)):
                module(normalize_ncthw(clips, spec))
            model_only = args.videos / (time.perf_counter() - started)

        cmd = [sys.executable, "-m", "deployments.cli", "tag", str(src), "--lake", str(d / "lake"), "--model",
               str(d / "model.pt"), "--batch-size", str(args.batch_size), "--decode-workers",
               str(args.decode_workers), "--shard-size", str(args.videos)]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                             "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
        if out.returncode not in (0, 1):
            print(out.stderr[-3000:])
            return out.returncode
        row = json.loads(out.stdout.strip().splitlines()[-1])
    flow = (row["ok"] + row["partial"]) / row["seconds"]
    result = {"videos": args.videos, "real_clips": n_real, "arch": args.arch, "batch_size": args.batch_size,
              "decode_workers": args.decode_workers, "model_only_clips_per_s": model_only,
              "tag_flow_clips_per_s": flow, "fraction_of_model_only": flow / model_only, "run": row}
    print(f"{args.videos} videos ({n_real} real), {args.arch}, batch {args.batch_size}, "
          f"{args.decode_workers} decode workers")
    print(f"model only {model_only:.2f} clips/s; tag flow {flow:.2f} clips/s = {flow / model_only:.2f} of model-only")
    print("results:", save(f"archive_{args.arch}", {"settings": vars(args), **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
