"""GPU throughput: model-only clips/s against the real decode-and-infer path, in one process.

    python -m bench.gpu --videos DIR --copies 70 --arch r2plus1d_18 --workers 2 4 8 14

1. model-only: the same batches of preprocessed clips fed straight to the model (fp32 vs bf16
   autocast, channels_last_3d on/off) - the ceiling;
2. the Predictor (decode pool -> fixed-size batches across videos) over an archive of real clips,
   for several decode-worker counts: videos/s, clips/s, share of wall time the GPU was busy.
Decode keeps up when (2) reaches (1); the worker count where it does is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def model_only(module, batch: int, frames: int, crop: int, device, *, bf16: bool, channels_last: bool,
               iters: int) -> float:
    import torch

    x = torch.randn(batch, 3, frames, crop, crop, device=device)
    net = module
    if channels_last:
        net = net.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    else:
        net = net.to(memory_format=torch.contiguous_format)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
    with torch.inference_mode(), ctx:
        for _ in range(3):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(iters):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    import torch

    from actionrec.inference.predictor import Predictor
    from actionrec.models import build_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", required=True, help="folder of clips, copied --copies times into an archive")
    p.add_argument("--copies", type=int, default=70)
    p.add_argument("--arch", default="r2plus1d_18")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--clips", type=int, default=1)
    p.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8, 14])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--device", default=None)
    p.add_argument("--backend", default="process", choices=["process", "thread"])
    p.add_argument("--out", default=None, help="JSON results file")
    args = p.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cudnn.benchmark = True
    model = build_model(args.arch, [str(i) for i in range(400)])
    spec = model.spec
    module = model.module.to(device).eval()
    result: dict = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__, "arch": args.arch, "batch": args.batch,
                    "clip": list(spec.clip_shape[:3]), "decode_backend": args.backend,
                    "model_only": {}, "pipeline": []}
    print(f"device {result['device']}, {args.arch}, batch {args.batch}, clip {result['clip']}")
    for bf16 in (False, True):
        for cl in (False, True):
            if device.type == "cpu" and bf16:
                continue
            rate = model_only(module, args.batch, spec.frames_per_clip, spec.crop_size, device, bf16=bf16,
                              channels_last=cl, iters=args.iters)
            key = f"{'bf16' if bf16 else 'fp32'}{'+channels_last_3d' if cl else ''}"
            result["model_only"][key] = rate
            print(f"model-only {key:28} {rate:9.1f} clips/s", flush=True)
    ceiling = max(result["model_only"].values())

    src = sorted(Path(args.videos).iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        uris = []
        for i in range(args.copies):
            for f in src:
                dst = Path(tmp) / f"{i:04d}_{f.name}"
                shutil.copy(f, dst)
                uris.append(str(dst))
        for workers in args.workers:
            predictor = Predictor(model, device=str(device), batch_size=args.batch, decode_workers=workers,
                                  decode_backend=args.backend)
            list(predictor.predict(uris[: args.batch * 2], clips=args.clips))  # warm-up (cudnn autotune)
            before = predictor.model_seconds  # run_batch returns CPU arrays: includes the device sync
            started = time.perf_counter()
            results = list(predictor.predict(uris, clips=args.clips))
            wall = time.perf_counter() - started
            busy = predictor.model_seconds - before
            ok = sum(r.status == "ok" for r in results)
            row = {"decode_backend": args.backend, "decode_workers": workers, "videos": len(results), "ok": ok, "seconds": wall,
                   "videos_per_s": len(results) / wall, "clips_per_s": len(results) * args.clips / wall,
                   "gpu_busy_share": busy / wall, "fraction_of_model_only": len(results) * args.clips / wall / ceiling}
            result["pipeline"].append(row)
            print(f"pipeline workers={workers:2d} {row['videos_per_s']:7.1f} videos/s {row['clips_per_s']:7.1f} clips/s "
                  f"busy {row['gpu_busy_share']:.0%} = {row['fraction_of_model_only']:.2f} of model-only", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
