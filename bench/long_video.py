"""Long videos: seconds, decoded/needed frames and peak RSS per video, against the textbook pipeline.

    python -m bench.long_video                       # 10-min and 1-min 360p, keyframe every 2 s and 10 s
    python -m bench.long_video --height 1080 --minutes 10 --gops 2 --methods actionrec   # memory at 1080p

Each measurement runs in its own process (peak RSS is that process's). Methods:
- ``actionrec``: the project's reader (packet index, forward decoding, seek past keyframes only);
- ``convert_sampled``: decode every frame, convert only the sampled ones;
- ``textbook``: decode every frame into a list of RGB arrays, then sample (the "preprocess" we replace).
All three feed the same clips to the same model (``--model``, random weights; ``none`` skips it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bench.common import in_subprocess, long_video, peak_rss_mb, save

SPEC_FRAMES, SPEC_STRIDE, SHORT, CROP = 16, 2, 128, 112


def _model(name: str):
    if name == "none":
        return None
    import torch

    from actionrec.models import build_model

    torch.manual_seed(0)
    return build_model(name, [str(i) for i in range(400)]).module.eval()


def _forward(model, clips_ncthw) -> None:
    if model is None:
        return
    import torch

    with torch.inference_mode():
        model(clips_ncthw)


def worker(method: str, path: str, clips: int, model_name: str) -> dict:
    import av
    import torch

    from actionrec.models.spec import InputSpec
    from actionrec.sampling import uniform_clips
    from actionrec.transforms import eval_clip
    from actionrec.video import VideoReader

    spec = InputSpec(frames_per_clip=SPEC_FRAMES, frame_stride=SPEC_STRIDE, short_side=SHORT, crop_size=CROP)
    model = _model(model_name)
    started = time.perf_counter()
    needed = clips * SPEC_FRAMES
    if method == "actionrec":
        with VideoReader(path) as reader:
            times = uniform_clips(reader.duration, reader.fps, clips, spec.clip_sampling)
            read = reader.read([t for c in times for t in c], short_side=SHORT)
        decoded = read.stats.frames_decoded
        frames = read.frames_thwc.reshape(clips, SPEC_FRAMES, *read.frames_thwc.shape[1:])
        batch = torch.stack([eval_clip(f, spec) for f in frames])
    else:
        with av.open(path) as c:
            vs = c.streams.video[0]
            fps = float(vs.average_rate)
            n = vs.frames
            duration = n / fps
            from fractions import Fraction

            times = uniform_clips(Fraction(duration), Fraction(vs.average_rate), clips, spec.clip_sampling)
            wanted = [min(int(t * Fraction(vs.average_rate)), n - 1) for c_ in times for t in c_]
            wanted_set = set(wanted)
            kept: dict[int, np.ndarray] = {}
            all_frames: list[np.ndarray] = []
            decoded = 0
            for i, frame in enumerate(c.decode(vs)):
                decoded += 1
                if method == "textbook":
                    all_frames.append(frame.to_ndarray(format="rgb24"))  # every frame, full size
                elif i in wanted_set:
                    kept[i] = frame.to_ndarray(format="rgb24")
        if method == "textbook":
            picked = [all_frames[min(i, len(all_frames) - 1)] for i in wanted]
        else:
            picked = [kept[i] for i in wanted]
        # Per-frame transforms as the textbook does them: resize, crop, normalise each frame.
        out = []
        for img in picked:
            t = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255
            h, w = t.shape[-2:]
            scale = SHORT / min(h, w)
            t = torch.nn.functional.interpolate(t, size=(round(h * scale), round(w * scale)), mode="bilinear",
                                                align_corners=False)
            top, left = (t.shape[-2] - CROP) // 2, (t.shape[-1] - CROP) // 2
            t = t[..., top : top + CROP, left : left + CROP]
            mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
            std = torch.tensor(spec.std).view(1, 3, 1, 1)
            out.append(((t - mean) / std)[0])
        batch = torch.stack(out).reshape(clips, SPEC_FRAMES, 3, CROP, CROP).permute(0, 2, 1, 3, 4)
    decode_s = time.perf_counter() - started
    _forward(model, batch)
    total = time.perf_counter() - started
    return {"method": method, "seconds": total, "decode_s": decode_s, "frames_decoded": decoded,
            "frames_needed": needed, "decoded_per_needed": decoded / needed, "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        method, path, clips, model = argv[1], argv[2], int(argv[3]), argv[4]
        print(json.dumps(worker(method, path, clips, model)))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 1])
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--gops", type=int, nargs="+", default=[2, 10], help="keyframe interval(s) in seconds")
    p.add_argument("--clips", type=int, nargs="+", default=[1, 10])
    p.add_argument("--methods", nargs="+", default=["actionrec", "convert_sampled", "textbook"])
    p.add_argument("--model", default="r2plus1d_18", help="architecture fed by every method, or 'none'")
    p.add_argument("--name", default=None, help="results file name under bench/results/")
    args = p.parse_args(argv)
    rows = []
    print(f"{'video':34} {'clips':>5} {'method':>16} {'s/video':>8} {'decoded/needed':>15} {'peak MB':>8} {'speed-up':>9}")
    for minutes in args.minutes:
        for gop in args.gops:
            path = str(long_video(minutes, args.height, gop))
            for clips in args.clips:
                results = {m: in_subprocess("bench.long_video", m, path, str(clips), args.model) for m in args.methods}
                base = results.get("textbook") or results[args.methods[-1]]
                for m, r in results.items():
                    r.update(video=path.rsplit("/", 1)[-1], minutes=minutes, gop_s=gop, clips=clips, height=args.height,
                             speedup_vs_textbook=base["seconds"] / r["seconds"],
                             rss_fraction_of_textbook=r["peak_rss_mb"] / base["peak_rss_mb"])
                    rows.append(r)
                    print(f"{r['video']:34} {clips:5d} {m:>16} {r['seconds']:8.2f} {r['decoded_per_needed']:15.1f} "
                          f"{r['peak_rss_mb']:8.0f} {r['speedup_vs_textbook']:8.1f}x", flush=True)
    name = args.name or f"long_video_{args.height}p"
    print("results:", save(name, {"settings": vars(args), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
