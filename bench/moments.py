"""Finding the moment, measured: what a dense run costs, and how well segments and shots come out.

    python -m bench.moments                     # every part, in this order
    python -m bench.moments --parts decode      # decoded frames per scored frame, by clip layout (no model)
    python -m bench.moments --parts cost        # a dense run on 1 and 10 minutes of 640x360 real footage
    python -m bench.moments --parts synthetic   # segments on 10 minutes of concatenated synthetic clips
    python -m bench.moments --parts real        # segments and shots on 10 minutes of fight_surv clips

``decode``: one dense decode pass (``stream_clips``, no model) over the 10-minute 640x360 H.264
video of ``bench.common.long_video`` (30 fps, a keyframe every 2 s) for several clip layouts:
decoded frames per scored frame (clips x frames per clip), per distinct frame the clips use, and per
frame of the video (at most 1: no frame is decoded twice).

``cost``: each video length in its own process (peak RSS is that process's), r2plus1d_18 (random
weights, the 16 x stride-2 Kinetics input) on the default engine: the model alone on as many clips
as the dense run scores (same batches), the dense run itself (``Predictor.predict_all`` with
``every=1``, decode in a thread beside the model), then the model alone again; the dense wall is
compared with the mean of the two model-only walls, all in the same process (the machine's load
drifts). ``dense MB`` is the dense run's own peak above the warm process.

``synthetic``: tiny3d trained on the synthetic temporal dataset (as bench.temporal_pairs; cached),
then a 10-minute video of fresh synthetic clips (another seed) in segments of 2 to 4 clips of one
class: recall and precision of the found segments at temporal IoU 0.5 with the right label, label
accuracy over time, for the default segment rules and with each rule taken away.

``real``: the default fight model (motion3d, trained on fight_surv's train split; cached), then a
10-minute 640x360 video of fight_surv's val and test clips (pillarboxed, 25 fps) in segments of 3 to
6 clips of one class, fight and no_fight alternating: the same segment figures, and shot changes
against the true clip boundaries (within 0.5 s) found on the dense pass's frames versus a second
pass that decodes every frame (what PySceneDetect would do; it is not installed here, so the second
pass runs the same detector on every frame), with the second pass's cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CACHE, in_subprocess, long_video, peak_rss_mb, reset_peak, save, status_mb

FIGHT = Path(__file__).resolve().parents[2] / "shared" / "real" / "fight_surv" / "labels.csv"
PARTS = ("decode", "cost", "synthetic", "real")


# -- decode: frames decoded per frame scored ------------------------------------------------------
LAYOUTS = {  # name: (InputSpec overrides, every)
    "16 x stride 2 (1.07 s), every 1 s": ({"frames_per_clip": 16, "sampling": "stride", "frame_stride": 2,
                                          "sample_fps": None}, 1.0),
    "16 x stride 2 (1.07 s), every 0.5 s": ({"frames_per_clip": 16, "sampling": "stride", "frame_stride": 2,
                                            "sample_fps": None}, 0.5),
    "32 x stride 2 (2.13 s), every 1 s": ({"frames_per_clip": 32, "sampling": "stride", "frame_stride": 2,
                                          "sample_fps": None}, 1.0),
    "16 at 8/s (2 s), every 1 s": ({"frames_per_clip": 16, "sampling": "fps", "sample_fps": 8.0}, 1.0),
    "16 x stride 1 (0.53 s), every 1 s": ({"frames_per_clip": 16, "sampling": "stride", "frame_stride": 1,
                                          "sample_fps": None}, 1.0),
}


def _dense_decode(path: str, spec: Any, every: float) -> dict[str, Any]:
    """One dense decode pass without a model: clips, frames scored, decoded, distinct, and its time."""
    from actionrec.data.clips import DenseClip, stream_clips
    from actionrec.data.sampling import dense_clips
    from actionrec.io.video import VideoReader

    with VideoReader(path) as reader:
        frames = reader.info().num_frames
        distinct = len({reader._snap(t) for c in dense_clips(reader.duration, reader.fps, every,  # noqa: SLF001
                                                             spec.clip_sampling) for t in c})
    started = time.perf_counter()
    clips, end = 0, None
    for item in stream_clips(path, spec, every):
        if isinstance(item, DenseClip):
            clips += 1
        else:
            end = item
    seconds = time.perf_counter() - started
    if end is None or end.error:
        raise RuntimeError(f"could not decode {path}: {end.error if end else 'no result'}")
    scored = clips * spec.frames_per_clip
    return {"clips": clips, "frames_scored": scored, "frames_distinct": distinct, "frames_decoded": end.frames_decoded,
            "video_frames": frames, "decoded_per_scored": end.frames_decoded / scored,
            "decoded_per_distinct": end.frames_decoded / distinct, "decoded_per_video_frame": end.frames_decoded / frames,
            "decode_s": seconds, "shots": len(end.shots)}


def part_decode(args: argparse.Namespace) -> dict[str, Any]:
    from actionrec.data.spec import InputSpec

    path = str(long_video(600, 360, 2))
    rows = []
    print(f"{'layout':38} {'clips':>6} {'scored':>7} {'distinct':>8} {'decoded':>8} {'dec/scored':>10} "
          f"{'dec/distinct':>12} {'dec/video':>9} {'s':>6}")
    for name, (overrides, every) in LAYOUTS.items():
        spec = InputSpec(short_side=128, crop_size=112).replace(**overrides)
        r = {"layout": name, "every": every, **_dense_decode(path, spec, every)}
        rows.append(r)
        print(f"{name:38} {r['clips']:6d} {r['frames_scored']:7d} {r['frames_distinct']:8d} {r['frames_decoded']:8d} "
              f"{r['decoded_per_scored']:10.3f} {r['decoded_per_distinct']:12.3f} {r['decoded_per_video_frame']:9.3f} "
              f"{r['decode_s']:6.1f}", flush=True)
    return {"video": path, "rows": rows}


# -- cost: a dense run against the model alone ----------------------------------------------------
def cost_worker(path: str, model_name: str, every: float, batch: int) -> dict[str, Any]:
    from actionrec.data.sampling import dense_clips
    from actionrec.engines.choice import choose_engine
    from actionrec.engines.runners import open_runner
    from actionrec.inference.predictor import Predictor
    from actionrec.io.video import VideoReader
    from actionrec.models.refs import pin_model
    from bench.long_video import _checkpoint

    choice = choose_engine("auto", "auto", "cpu")
    runner = open_runner(pin_model(_checkpoint(model_name)), choice, batch_size=batch)
    spec = runner.model.spec
    predictor = Predictor(runner, batch_size=batch, decode_workers=1, decode_backend="thread")
    with open(path, "rb") as f:  # a warm page cache, as for every measurement
        while f.read(1 << 24):
            pass
    with VideoReader(path) as reader:
        n = sum(1 for _ in dense_clips(reader.duration, reader.fps, every, spec.clip_sampling))
    clips = np.random.default_rng(0).integers(0, 256, (batch, *spec.clip_shape), dtype=np.uint8)
    predictor.run_batch(clips)  # warm-up

    def model_only() -> float:
        started = time.perf_counter()
        for k in range(0, n, batch):
            predictor.run_batch(clips[: min(batch, n - k)])
        return time.perf_counter() - started

    before = model_only()
    predictor.model_seconds = 0.0
    baseline = status_mb("VmRSS")
    reset_peak()
    started = time.perf_counter()
    [result] = predictor.predict_all([path], every=every, top_k=5)
    dense = time.perf_counter() - started
    dense_rss = max(status_mb("VmHWM") - baseline, 0.0)
    model_in_dense = predictor.model_seconds
    after = model_only()  # again after: the machine's load drifts, so the dense run is compared with both
    if result.status != "ok":
        raise RuntimeError(f"dense run failed on {path}: {result.error}")
    mean = (before + after) / 2
    return {"engine": str(choice), "clips": result.num_clips, "expected_clips": n, "model_only_s": mean,
            "model_only_before_s": before, "model_only_after_s": after,
            "dense_s": dense, "dense_over_model_only": dense / mean,
            "model_s_during_dense": model_in_dense, "decode_s_during_dense": result.decode_s,
            "dense_rss_mb": dense_rss, "warm_rss_mb": baseline,
            "peak_rss_mb": peak_rss_mb(), "shots": len(result.shots)}


def part_cost(args: argparse.Namespace) -> dict[str, Any]:
    from actionrec.data.spec import InputSpec

    rows = []
    for seconds in (60, 600):
        path = str(long_video(seconds, 360, 2))
        r = in_subprocess("bench.moments", "cost", path, args.model, "1.0", str(args.batch))
        spec = InputSpec(frames_per_clip=16, sampling="stride", frame_stride=2, sample_fps=None, short_side=128,
                         crop_size=112)
        r.update(video=Path(path).name, seconds_of_video=seconds, **{f"decode_only_{k}": v for k, v in
                                                                        _dense_decode(path, spec, 1.0).items()})
        rows.append(r)
        print(f"{seconds:4d} s video: {r['clips']} clips; model only {r['model_only_s']:.1f} s, dense run "
              f"{r['dense_s']:.1f} s ({r['dense_over_model_only']:.3f}x); decoded per scored frame "
              f"{r['decode_only_decoded_per_scored']:.3f}, per video frame {r['decode_only_decoded_per_video_frame']:.3f};"
              f" peak RSS {r['peak_rss_mb']:.0f} MB (dense run {r['dense_rss_mb']:.0f} MB above warm)", flush=True)
    short, long_ = rows
    ratio = long_["peak_rss_mb"] / short["peak_rss_mb"]
    print(f"peak RSS, 10 min / 1 min: {ratio:.3f}")
    return {"model": args.model, "batch": args.batch, "rows": rows, "peak_rss_10min_over_1min": ratio}


# -- segments: scoring found against known ----------------------------------------------------------
RULE_ROWS = {"default": {}, "no smoothing": {"smoothing_s": 0.0}, "no shot snapping": {"snap_s": 0.0},
             "no minimum duration": {"min_seconds": 0.0}, "none of them": {"smoothing_s": 0.0, "snap_s": 0.0,
                                                                          "min_seconds": 0.0}}


def _segment_rows(result: Any, truth: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
    from actionrec.moments.metrics import score_segments
    from actionrec.moments.segments import SegmentRules, video_segments

    rows = []
    for name, changes in RULE_ROWS.items():
        found = video_segments(result, SegmentRules(**changes))
        s = score_segments(truth, [(x.label, x.start_s, x.end_s) for x in found])
        rows.append({"rules": name, **s.to_dict()})
        print(f"  {name:20} recall {s.recall:.3f}  precision {s.precision:.3f}  label accuracy "
              f"{s.label_accuracy:.3f}  ({s.found_segments} found, {s.true_segments} true)", flush=True)
    return rows


def _shot_scores(found: list[float], cuts: list[float], tolerance: float = 0.5) -> dict[str, Any]:
    """Greedy nearest matching of found changes to true ones within ``tolerance`` seconds."""
    pairs = sorted((abs(f - c), i, j) for i, c in enumerate(cuts) for j, f in enumerate(found)
                   if abs(f - c) <= tolerance)
    used_c: set[int] = set()
    used_f: set[int] = set()
    errors = []
    for err, i, j in pairs:
        if i not in used_c and j not in used_f:
            used_c.add(i)
            used_f.add(j)
            errors.append(err)
    return {"true_changes": len(cuts), "found_changes": len(found), "matched": len(used_c),
            "recall": len(used_c) / len(cuts) if cuts else 1.0,
            "precision": len(used_c) / len(found) if found else 1.0,
            "mean_abs_error_s": float(np.mean(errors)) if errors else None, "tolerance_s": tolerance}


def _encoder(path: Path, fps: int, width: int, height: int, preset: str = "veryfast") -> tuple[Any, Any]:
    import av

    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": preset, "crf": "23", "x264-params": f"keyint={2 * fps}:min-keyint={2 * fps}"}
    return out, stream


def _write(out: Any, stream: Any, rgb: np.ndarray | None) -> None:
    import av

    frames = [av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")] if rgb is not None else [None]
    for frame in frames:
        for packet in stream.encode(frame):
            out.mux(packet)


def _storyboard(rng: np.random.Generator, labels: list[str], seconds: float, clip_s: list[float],
                runs: tuple[int, int]) -> list[tuple[str, int]]:
    """(label, clips) runs, the label never the same twice in a row, until ``seconds`` are filled."""
    plan: list[tuple[str, int]] = []
    total, previous = 0.0, None
    while total < seconds:
        label = rng.choice([x for x in labels if x != previous])
        n = int(rng.integers(runs[0], runs[1] + 1))
        plan.append((str(label), n))
        total += n * float(np.mean(clip_s))
        previous = label
    return plan


def _dense_result(model_path: str, video: str) -> tuple[Any, float]:
    from actionrec.inference.predictor import Predictor
    from actionrec.models.refs import load_model

    predictor = Predictor(load_model(model_path), batch_size=16, decode_workers=1, decode_backend="thread")
    started = time.perf_counter()
    [result] = predictor.predict_all([video], every=1.0, top_k=5)
    if result.status != "ok":
        raise RuntimeError(f"dense run failed on {video}: {result.error}")
    return result, time.perf_counter() - started


def _synth_model() -> str:
    path = CACHE / "moments" / "synth_tiny3d" / "model.pt"
    if not path.exists():
        import tempfile

        from actionrec.data.labels import read_labels
        from actionrec.data.synth import SynthConfig, write_dataset
        from actionrec.training.config import TrainConfig
        from actionrec.training.loop import train

        with tempfile.TemporaryDirectory() as tmp:
            labels = read_labels(write_dataset(Path(tmp) / "train", SynthConfig(per_class=40, seed=0)))
            train(TrainConfig(arch="tiny3d", epochs=40, optimizer="adamw", lr=2e-3, weight_decay=0.05), labels,
                  out=path, progress=False, model_name="synth")
    return str(path)


def part_synthetic(args: argparse.Namespace) -> dict[str, Any]:
    from actionrec.data.synth import CLASSES, render_video

    model = _synth_model()
    rng = np.random.default_rng(777)
    fps, frames_per_clip = 16, 32
    video = CACHE / "moments" / f"synthetic_{args.seconds:g}s.mp4"
    truth, cuts, t = [], [], 0.0
    plan = _storyboard(rng, list(CLASSES), args.seconds, [frames_per_clip / fps], (2, 4))
    out, stream = _encoder(video, fps, 64, 64)
    with out:
        for label, n in plan:
            start = t
            for _ in range(n):
                for frame in render_video(label, rng, size=64, num_frames=frames_per_clip):
                    _write(out, stream, frame)
                t += frames_per_clip / fps
                cuts.append(t)
            truth.append((label, start, t))
        _write(out, stream, None)
    result, seconds = _dense_result(model, str(video))
    print(f"synthetic: {len(truth)} segments in {t:.0f} s, {result.num_clips} clips scored in {seconds:.1f} s")
    rows = _segment_rows(result, truth)
    shots = _shot_scores([s.start_s for s in result.shots if s.start_kind != "start"], cuts[:-1])
    print(f"  shots on the dense pass: recall {shots['recall']:.3f} precision {shots['precision']:.3f}")
    return {"video": str(video), "seconds": t, "segments": len(truth), "dense_s": seconds, "rows": rows,
            "shots_single_pass": shots}


def _fight_model() -> str:
    path = CACHE / "moments" / "fight_motion3d" / "model.pt"
    if not path.exists():
        from actionrec.data.labels import read_labels
        from actionrec.training.config import TrainConfig
        from actionrec.training.loop import train

        train(TrainConfig(), read_labels(FIGHT), out=path, progress=False, model_name="fight")
    return str(path)


def _fight_video(seconds: float, fps: int = 25, width: int = 640, height: int = 360) -> tuple[Path, list, list]:
    """Val and test clips of fight_surv, pillarboxed to 640x360 at 25 fps, in segments of 3 to 6 clips
    of one class, fight and no_fight alternating (the pool is reshuffled when it runs out)."""
    from PIL import Image

    from actionrec.data.labels import read_labels
    from actionrec.io.uris import local_path
    from actionrec.io.video import VideoReader

    labels = read_labels(FIGHT)
    pools = {}
    for row in labels.rows:
        if row.split in ("val", "test"):
            pools.setdefault(row.label, []).append(row.uri)
    rng = np.random.default_rng(2024)
    queues = {k: [] for k in pools}
    path = CACHE / "moments" / f"fight_{seconds:g}s_{height}p.mp4"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        saved = json.loads(meta.read_text())
        return path, [tuple(x) for x in saved["truth"]], saved["cuts"]
    truth, cuts, t = [], [], 0.0
    label = str(rng.choice(sorted(pools)))
    out, stream = _encoder(path.with_suffix(".part.mp4"), fps, width, height)
    with out:
        while t < seconds:
            start = t
            for _ in range(int(rng.integers(3, 7))):
                if not queues[label]:
                    queues[label] = list(rng.permutation(pools[label]))
                uri = queues[label].pop()
                with VideoReader(local_path(uri)) as reader:
                    cached = reader.decode_all()
                n = int(float(cached.duration) * fps)
                for frame in cached.read([(i + 0.5) / fps for i in range(n)]):
                    img = Image.fromarray(frame)
                    scale = min(width / img.width, height / img.height)
                    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
                    canvas = np.zeros((height, width, 3), np.uint8)
                    y, x = (height - img.height) // 2, (width - img.width) // 2
                    canvas[y : y + img.height, x : x + img.width] = np.asarray(img)
                    _write(out, stream, canvas)
                t += n / fps
                cuts.append(t)
            truth.append((label, start, t))
            label = "no_fight" if label == "fight" else "fight"
        _write(out, stream, None)
    path.with_suffix(".part.mp4").replace(path)
    meta.write_text(json.dumps({"truth": truth, "cuts": cuts}))
    return path, truth, cuts


def _every_frame_shots(video: str, short_side: int) -> tuple[list[float], float]:
    """The second pass: decode every frame (at the dense pass's size) and run the same detector."""
    import av

    from actionrec.io.video import output_size
    from actionrec.moments.shots import ShotDetector

    started = time.perf_counter()
    detector = ShotDetector()
    with av.open(video) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        w, h = output_size(vs.codec_context.width, vs.codec_context.height, short_side)
        first = None
        for frame in c.decode(vs):
            t = float(frame.pts * vs.time_base)
            first = t if first is None else first
            detector.add(t - first, frame.to_ndarray(format="rgb24", width=w, height=h))
    return [t for t, _ in detector.changes()], time.perf_counter() - started


def part_real(args: argparse.Namespace) -> dict[str, Any]:
    from actionrec.models.refs import load_model

    if not FIGHT.exists():
        print(f"{FIGHT} is absent: the real-footage part needs ../shared/real/fight_surv")
        return {}
    model = _fight_model()
    video, truth, cuts = _fight_video(args.seconds)
    result, seconds = _dense_result(model, str(video))
    print(f"real: {len(truth)} segments, {len(cuts) - 1} clip boundaries in {truth[-1][2]:.0f} s; "
          f"{result.num_clips} clips scored in {seconds:.1f} s")
    rows = _segment_rows(result, truth)
    single = _shot_scores([s.start_s for s in result.shots if s.start_kind != "start"], cuts[:-1])
    every_frame, second_pass_s = _every_frame_shots(str(video), load_model(model).spec.short_side)
    second = {**_shot_scores(every_frame, cuts[:-1]), "extra_seconds": second_pass_s}
    for name, s in (("dense pass frames", single), ("second pass, every frame", second)):
        print(f"  shots, {name:26} recall {s['recall']:.3f} precision {s['precision']:.3f} mean error "
              f"{s['mean_abs_error_s'] or 0:.3f} s" + (f"; costs {s['extra_seconds']:.1f} s more"
                                                       if "extra_seconds" in s else ""), flush=True)
    return {"video": str(video), "model": model, "segments": len(truth), "dense_s": seconds, "rows": rows,
            "shots_single_pass": single, "shots_second_pass": second, "sample_fps": load_model(model).spec.sample_fps}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--worker", "cost"]:
        path, model, every, batch = argv[2], argv[3], float(argv[4]), int(argv[5])
        print(json.dumps(cost_worker(path, model, every, batch)))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    p.add_argument("--model", default="r2plus1d_18", help="architecture of the cost part (random weights)")
    p.add_argument("--batch", type=int, default=8, help="clips per model batch in the cost part")
    p.add_argument("--seconds", type=float, default=600, help="length of the synthetic and real videos")
    args = p.parse_args(argv)
    (CACHE / "moments").mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        started = time.perf_counter()
        payload = globals()[f"part_{part}"](args)
        if payload:
            print("results:", save(f"moments_{part}", {"settings": vars(args), **payload,
                                                       "part_seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
