"""Inference settings on CPU: batch size x threads x channels_last_3d x torch.compile, in clips/s.

    python -m bench.cpu_sweep                                   # r2plus1d_18, the full grid
    python -m bench.cpu_sweep --arch r3d_18 --batch-sizes 1 8 --no-compile

Every setting runs in this process on the same random clips (normalised as the Predictor does);
"contiguous" is plain NCTHW input and weights, "channels_last" both in channels_last_3d.
Each is warmed up once (which also compiles, timed apart as "first call"); then ``--rounds``
rounds each time one forward of every setting in turn, so that drift on a shared machine hits
all settings alike; the median per setting gives clips/s. ``vs base`` is the ratio to the eager,
contiguous, all-threads run at ``--base-batch`` (how the textbook runs a model).
``torch.compile`` (static shapes, one graph per batch size and layout) runs at all threads only.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

from bench.common import save


def main(argv: list[str] | None = None) -> int:
    import torch

    from actionrec.data.transforms import normalize_ncthw
    from actionrec.models import build_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="r2plus1d_18")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    p.add_argument("--compile-batch-sizes", type=int, nargs="*", default=[1, 8])
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--base-batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--name", default=None, help="results file name under bench/results/")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    loaded = build_model(args.arch, [str(i) for i in range(400)])
    spec = loaded.spec
    all_threads = torch.get_num_threads()
    contiguous = loaded.module.eval()
    channels_last = copy.deepcopy(contiguous).to(memory_format=torch.channels_last_3d)
    modules = {False: contiguous, True: channels_last}
    gen = torch.Generator().manual_seed(0)
    inputs = {}
    for b in sorted({*args.batch_sizes, args.base_batch, *args.compile_batch_sizes}):
        x = normalize_ncthw(torch.randint(0, 256, (b, *spec.clip_shape),
                                          dtype=torch.uint8, generator=gen), spec)
        # normalize_ncthw permutes NTHWC, so its output already has channels_last_3d strides:
        # "contiguous" makes it plain NCTHW, as the textbook's stacked CTHW clips are.
        inputs[b, False] = x.contiguous()
        inputs[b, True] = x.contiguous(memory_format=torch.channels_last_3d)

    settings = [("eager", b, t, cl) for cl in (False, True) for t in args.threads for b in args.batch_sizes]
    base_key = ("eager", args.base_batch, all_threads, False)
    if base_key not in settings:
        settings.insert(0, base_key)
    compiled = {}
    if not args.no_compile:
        for cl in (False, True):
            compiled[cl] = torch.compile(modules[cl], dynamic=False)
            settings += [("compile", b, all_threads, cl) for b in args.compile_batch_sizes]

    def forward(setting: tuple[str, int, int, bool]) -> float:
        mode, batch, threads, cl = setting
        torch.set_num_threads(threads)
        module = compiled[cl] if mode == "compile" else modules[cl]
        with torch.inference_mode():
            started = time.perf_counter()
            module(inputs[batch, cl])
            return time.perf_counter() - started

    first = {}
    for setting in settings:
        first[setting] = forward(setting)
        print(f"warm-up {setting[0]:>7} batch {setting[1]} threads {setting[2]} "
              f"{'channels_last' if setting[3] else 'contiguous'}: first call {first[setting]:.1f} s", flush=True)
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    for i in range(args.rounds):
        for setting in settings:
            times[setting].append(forward(setting))
        print(f"round {i + 1}/{args.rounds} done", flush=True)
    torch.set_num_threads(all_threads)

    rows = []
    for setting in settings:
        mode, batch, threads, cl = setting
        median = statistics.median(times[setting])
        rows.append({"mode": mode, "batch": batch, "threads": threads, "channels_last": cl, "arch": args.arch,
                     "first_s": first[setting], "median_s": median, "times_s": times[setting],
                     "clips_per_s": batch / median})
    base = next(r for r in rows if (r["mode"], r["batch"], r["threads"], r["channels_last"]) == base_key)
    print(f"{args.arch}; base = eager, contiguous, batch {args.base_batch}, {all_threads} threads: "
          f"{base['clips_per_s']:.2f} clips/s")
    print(f"{'mode':>8} {'batch':>5} {'threads':>7} {'layout':>14} {'clips/s':>8} {'vs base':>8} {'first call s':>12}")
    for r in rows:
        r["vs_base"] = r["clips_per_s"] / base["clips_per_s"]
        layout = "channels_last" if r["channels_last"] else "contiguous"
        print(f"{r['mode']:>8} {r['batch']:5d} {r['threads']:7d} {layout:>14} {r['clips_per_s']:8.2f} "
              f"{r['vs_base']:7.2f}x {r['first_s']:12.1f}")
    best = max(rows, key=lambda r: r["clips_per_s"])
    print(f"best: {best['mode']}, batch {best['batch']}, {best['threads']} threads, "
          f"{'channels_last' if best['channels_last'] else 'contiguous'}: {best['vs_base']:.2f}x the base")
    name = args.name or f"cpu_sweep_{args.arch}"
    print("results:", save(name, {"settings": vars(args), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
