"""Long videos: seconds, decoded/needed frames and peak RSS per video, against the textbook pipeline.

    python -m bench.long_video                       # 10 min, 1 min and a 10 s excerpt; keyframe every 2 s and 10 s
    python -m bench.long_video --seconds 600 --gops 2 --clips 1 --repeats 5

The videos are 640x360 H.264 (x264's default preset, CRF 23) made from the shared real clips
(see ``bench.common.long_video``); generated once and cached under ``bench/.cache``.

Each method runs in its own process (peak RSS is that process's), loads the same model (random
weights, seed 0), warms it up with one forward and reads the file once so it is in the page cache,
then tags the video ``--repeats`` times; the table shows medians. Methods:
- ``actionrec``: the production path, ``Predictor.predict_all`` (decode_clips in a decode worker
  process: frame index, forward decoding, seeks past keyframes only; batched inference) with the
  default engine (OpenVINO on CPU, opened from the conversion cache: this process never imports
  torch); a long MP4 is indexed from its sample table; ``actionrec-packets``: the same with the
  index read from every packet; ``actionrec-torch``: with ``engine="torch"`` (eager fp32);
- ``convert_sampled``: decode every frame, convert only the sampled ones, per-frame transforms;
- ``textbook``: decode every frame into a list of RGB arrays, sample, per-frame transforms.
The two baselines call the model as the textbook does (fp32, contiguous, ``inference_mode``).
``peak MB`` is the process's peak RSS over its life (torch, the model and its forwards included);
``decode MB`` is the decode stage's own peak above the warm process (one more, untimed decode with
the kernel's peak count restarted): the memory that grows with the video.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from fractions import Fraction

import numpy as np

from bench.common import in_subprocess, long_video, peak_rss_mb, reset_peak, save, status_mb

SPEC_FRAMES, SPEC_STRIDE, SHORT, CROP = 16, 2, 128, 112


def _baseline_clips(method: str, path: str, clips: int, spec) -> tuple[object, int]:
    """Decode every frame, then sample and transform each sampled frame, as the textbook does."""
    import av
    import torch

    from actionrec.data.sampling import uniform_clips

    with av.open(path) as c:
        vs = c.streams.video[0]
        rate = Fraction(vs.average_rate)
        n = vs.frames
        times = uniform_clips(Fraction(n) / rate, rate, clips, spec.clip_sampling)
        wanted = [min(int(t * rate), n - 1) for c_ in times for t in c_]
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
    picked = [all_frames[min(i, len(all_frames) - 1)] for i in wanted] if method == "textbook" else [
        kept[i] for i in wanted]
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    out = []
    for img in picked:  # per-frame transforms: resize the short side, centre crop, normalise
        t = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255
        h, w = t.shape[-2:]
        scale = SHORT / min(h, w)
        t = torch.nn.functional.interpolate(t, size=(round(h * scale), round(w * scale)), mode="bilinear",
                                            align_corners=False)
        top, left = (t.shape[-2] - CROP) // 2, (t.shape[-1] - CROP) // 2
        t = t[..., top : top + CROP, left : left + CROP]
        out.append(((t - mean) / std)[0])
    return torch.stack(out).reshape(clips, SPEC_FRAMES, 3, CROP, CROP).permute(0, 2, 1, 3, 4), decoded


def _checkpoint(model_name: str) -> str:
    """The random-weight model (seed 0) every method feeds, saved once so the actionrec methods open
    it by reference (and OpenVINO from its conversion cache) as a tag worker does."""
    from bench.common import CACHE

    path = CACHE / f"long_video_{model_name}" / "model.pt"
    if not path.exists():
        import torch

        from actionrec.data.spec import InputSpec
        from actionrec.models import build_model, save_checkpoint

        spec = InputSpec(frames_per_clip=SPEC_FRAMES, sampling="stride", frame_stride=SPEC_STRIDE,
                         sample_fps=None, short_side=SHORT, crop_size=CROP)
        torch.manual_seed(0)
        save_checkpoint(build_model(model_name, [str(i) for i in range(400)], spec=spec), path,
                        {"model_name": f"bench-{model_name}"})
    return str(path)


def _actionrec_worker(method: str, path: str, clips: int, model_name: str, repeats: int) -> dict:
    """The production path, without torch when the engine is OpenVINO."""
    from actionrec.data.clips import decode_clips
    from actionrec.engines.choice import choose_engine
    from actionrec.engines.runners import open_runner
    from actionrec.inference.predictor import Predictor
    from actionrec.io import video
    from actionrec.io.video import VideoReader
    from actionrec.models.refs import pin_model

    if method == "actionrec-packets":  # the index from every packet, in the decode workers too
        os.environ[video.INDEX_ENV] = "packets"
    choice = choose_engine("torch" if method == "actionrec-torch" else "auto", "auto", "cpu")
    runner = open_runner(pin_model(_checkpoint(model_name)), choice, batch_size=clips)
    spec = runner.model.spec
    predictor = Predictor(runner, batch_size=clips, decode_workers=1)
    with open(path, "rb") as f:  # the same warm page cache for every method
        while f.read(1 << 24):
            pass
    predictor.run_batch(np.zeros((clips, SPEC_FRAMES, CROP, CROP, 3), np.uint8))  # warm-up
    baseline_rss = status_mb("VmRSS")
    reset_peak()
    decoded = decode_clips(path, spec, clips).frames_decoded  # what a decode worker runs
    decode_rss = max(status_mb("VmHWM") - baseline_rss, 0.0)
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        [result] = predictor.predict_all([path], clips=clips)
        if result.status != "ok":
            raise RuntimeError(f"actionrec could not tag {path}: {result.error}")
        runs.append({"seconds": time.perf_counter() - started, "decode_s": result.decode_s,
                     "model_s": result.infer_s})
    index_s = []
    for _ in range(5):
        with VideoReader(path) as reader:
            started = time.perf_counter()
            reader.index()
            index_s.append(time.perf_counter() - started)
    needed = clips * SPEC_FRAMES
    return {"method": method, "engine": str(choice), "torch_imported": "torch" in sys.modules,
            "index_source": reader.index_source, "index_s": statistics.median(index_s),
            **{k: statistics.median(r[k] for r in runs) for k in runs[0]},
            "repeats": repeats, "runs_s": [r["seconds"] for r in runs], "frames_decoded": decoded,
            "frames_needed": needed, "decoded_per_needed": decoded / needed, "peak_rss_mb": peak_rss_mb(),
            "warm_rss_mb": baseline_rss, "decode_rss_mb": decode_rss}


def worker(method: str, path: str, clips: int, model_name: str, repeats: int) -> dict:
    if method.startswith("actionrec"):
        return _actionrec_worker(method, path, clips, model_name, repeats)
    import torch

    from actionrec.data.spec import InputSpec
    from actionrec.models import build_model

    spec = InputSpec(frames_per_clip=SPEC_FRAMES, sampling="stride", frame_stride=SPEC_STRIDE, sample_fps=None,
                     short_side=SHORT, crop_size=CROP)
    torch.manual_seed(0)
    loaded = build_model(model_name, [str(i) for i in range(400)], spec=spec)
    module = loaded.module.eval()
    with open(path, "rb") as f:  # the same warm page cache for every method
        while f.read(1 << 24):
            pass
    with torch.inference_mode():  # warm-up: first-call costs (oneDNN primitives) belong to no method
        zeros = torch.zeros(clips, 3, SPEC_FRAMES, CROP, CROP)
        module(zeros)
    baseline_rss = status_mb("VmRSS")
    # First, untimed and without the model: the decode stage's own peak above the warm process
    # (before any timed run has grown the heap).
    reset_peak()
    _, decoded = _baseline_clips(method, path, clips, spec)
    decode_rss = max(status_mb("VmHWM") - baseline_rss, 0.0)
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        batch, decoded = _baseline_clips(method, path, clips, spec)
        decode_s = time.perf_counter() - started
        with torch.inference_mode():
            module(batch)
        total = time.perf_counter() - started
        runs.append({"seconds": total, "decode_s": decode_s, "model_s": total - decode_s})
    needed = clips * SPEC_FRAMES
    return {"method": method, **{k: statistics.median(r[k] for r in runs) for k in runs[0]},
            "repeats": repeats, "runs_s": [r["seconds"] for r in runs], "frames_decoded": decoded,
            "frames_needed": needed, "decoded_per_needed": decoded / needed, "peak_rss_mb": peak_rss_mb(),
            "warm_rss_mb": baseline_rss, "decode_rss_mb": decode_rss}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        method, path, clips, model, repeats = argv[1], argv[2], int(argv[3]), argv[4], int(argv[5])
        print(json.dumps(worker(method, path, clips, model, repeats)))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, nargs="+", default=[600, 60, 10], help="video length(s)")
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--gops", type=int, nargs="+", default=[2, 10], help="keyframe interval(s) in seconds")
    p.add_argument("--clips", type=int, nargs="+", default=[1, 10])
    p.add_argument("--methods", nargs="+", default=["actionrec", "actionrec-torch", "convert_sampled", "textbook"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default="r2plus1d_18", help="architecture every method feeds (random weights)")
    p.add_argument("--name", default=None, help="results file name under bench/results/")
    args = p.parse_args(argv)
    if any(m.startswith("actionrec") for m in args.methods):  # the checkpoint and its conversion, made once
        from actionrec.engines.choice import choose_engine
        from actionrec.engines.runners import open_runner
        from actionrec.models.refs import pin_model

        open_runner(pin_model(_checkpoint(args.model)), choose_engine("auto", "auto", "cpu"))
    rows = []
    print(f"{'video':40} {'clips':>5} {'method':>16} {'s/video':>8} {'decode s':>8} {'model s':>8} "
          f"{'dec/need':>8} {'peak MB':>8} {'decode MB':>9} {'speed-up':>9} {'RSS frac':>8}")
    for seconds in args.seconds:
        for gop in args.gops:
            if gop > seconds:
                continue
            path = str(long_video(seconds, args.height, gop))
            for clips in args.clips:
                results = {m: in_subprocess("bench.long_video", m, path, str(clips), args.model, str(args.repeats))
                           for m in args.methods}
                base = results.get("textbook")
                for m, r in results.items():
                    r.update(video=path.rsplit("/", 1)[-1], seconds_of_video=seconds, gop_s=gop, clips=clips,
                             height=args.height)
                    if base:
                        r.update(speedup_vs_textbook=base["seconds"] / r["seconds"],
                                 rss_fraction_of_textbook=r["peak_rss_mb"] / base["peak_rss_mb"])
                    if "convert_sampled" in results:
                        r["speedup_vs_convert_sampled"] = results["convert_sampled"]["seconds"] / r["seconds"]
                    rows.append(r)
                    speedup = f"{r['speedup_vs_textbook']:8.1f}x" if base else f"{'-':>9}"
                    frac = f"1/{1 / r['rss_fraction_of_textbook']:.1f}" if base else "-"
                    print(f"{r['video']:40} {clips:5d} {m:>16} {r['seconds']:8.2f} {r['decode_s']:8.2f} "
                          f"{r['model_s']:8.2f} {r['decoded_per_needed']:8.1f} {r['peak_rss_mb']:8.0f} "
                          f"{r['decode_rss_mb']:9.0f} {speedup} {frac:>8}", flush=True)
    shortest = min(args.seconds)
    for method in [m for m in args.methods if m.startswith("actionrec")]:
        ours = {(r["seconds_of_video"], r["gop_s"], r["clips"]): r for r in rows if r["method"] == method}
        for (seconds, gop, clips), r in sorted(ours.items()):
            excerpt = ours.get((shortest, gop, clips))
            if excerpt and seconds != shortest:
                print(f"{method}, {seconds:g} s video, keyframe every {gop} s, {clips} clip(s): "
                      f"{r['seconds'] / excerpt['seconds']:.2f}x the cost of its {shortest:g} s excerpt "
                      f"(index from {r['index_source']}: {r['index_s'] * 1000:.1f} ms against "
                      f"{excerpt['index_s'] * 1000:.1f} ms)")
    name = args.name or f"long_video_{args.height}p"
    print("results:", save(name, {"settings": vars(args), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
