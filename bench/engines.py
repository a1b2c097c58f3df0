"""Engines on this CPU: model-only speed, a tag worker's memory, and agreement with torch fp32.

    python -m bench.engines                      # r2plus1d_18, batch 4, 3 interleaved rounds
    python -m bench.engines --arch r2plus1d_18 --batch 4 --rounds 5

1. Speed: the same random-weight network (seed 0) and the same uint8 clips through each runner this
   machine offers (torch fp32 as the Predictor runs it; torch bf16 autocast and OpenVINO bf16 only
   where the CPU has native bf16; OpenVINO f32), timed in interleaved rounds (this machine drifts by
   +-20%), medians; ratios against torch fp32 measured in the same run.
2. Memory: a fresh process per engine tags the real clips in ../shared/videos with the Predictor
   (model opened from its reference: OpenVINO from the conversion cache); peak RSS (VmHWM) and
   whether torch was imported.
3. Agreement: a tiny3d trained for a few epochs on the synthetic set; top-1 agreement of each
   engine with torch fp32 on a fresh synthetic draw and on real footage (../shared/videos and the
   test split of ../shared/real/fight_surv), and the largest probability gap.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import SHARED_VIDEOS, in_subprocess, save


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(checkpoint: str, engine: str, videos: list[str]) -> dict:
    """Tag ``videos`` as a tag worker does; report peak RSS and whether torch came in."""
    from actionrec.engines.choice import choose_engine
    from actionrec.engines.runners import open_runner
    from actionrec.inference.predictor import Predictor
    from actionrec.models.refs import pin_model

    started = time.perf_counter()
    runner = open_runner(pin_model(checkpoint), choose_engine(engine, "auto", "cpu"))
    results = Predictor(runner, batch_size=4, decode_workers=1, decode_backend="thread").predict_all(videos, clips=3)
    return {"engine": str(runner.choice), "ok": sum(r.status == "ok" for r in results), "peak_rss_mb": _vmhwm_mb(),
            "torch_imported": "torch" in sys.modules, "seconds": time.perf_counter() - started}


def _choices() -> list:
    from actionrec.engines.choice import EngineChoice, cpu_has_bf16

    out = [EngineChoice("torch", "f32", "cpu"), EngineChoice("openvino", "f32", "cpu")]
    if cpu_has_bf16():
        out += [EngineChoice("torch", "bf16", "cpu"), EngineChoice("openvino", "bf16", "cpu")]
    return out


def speed(arch: str, batch: int, rounds: int, tmp: Path) -> tuple[dict, str]:
    import numpy as np
    import torch

    from actionrec.engines.runners import open_runner
    from actionrec.models import build_model, save_checkpoint
    from actionrec.models.refs import load_model

    torch.manual_seed(0)
    save_checkpoint(build_model(arch, [str(i) for i in range(400)]), tmp / "speed" / "model.pt", {"model_name": arch})
    loaded = load_model(str(tmp / "speed" / "model.pt"))
    s = loaded.spec
    clips = np.random.default_rng(0).integers(0, 256, (batch, *s.clip_shape),
                                              dtype=np.uint8)
    runners = {str(c): open_runner(loaded, c, batch_size=batch) for c in _choices()}
    try:  # int8, for speed only here (random weights): agreement is measured on a trained model below
        import nncf
        import openvino as ov

        from actionrec.engines.choice import EngineChoice
        from actionrec.engines.openvino_runner import OpenVINORunner

        f32 = runners["openvino f32 on cpu"]
        graph = nncf.quantize(ov.Core().read_model(str(f32.path)), nncf.Dataset([clips]), subset_size=batch,
                              fast_bias_correction=True)
        runners["openvino int8 on cpu"] = OpenVINORunner(graph, f32.model, EngineChoice("openvino", "int8", "cpu"))
    except ImportError:
        pass
    for r in runners.values():
        r.run(clips)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():
            started = time.perf_counter()
            r.run(clips)
            times[k].append((time.perf_counter() - started) / batch)
    base = statistics.median(times[str(_choices()[0])])
    return ({k: {"s_per_clip": statistics.median(v), "vs_torch_f32": base / statistics.median(v)}
             for k, v in times.items()}, str(tmp / "speed" / "model.pt"))


def agreement(tmp: Path) -> dict:
    import numpy as np

    from actionrec.data.labels import read_labels
    from actionrec.data.synth import SynthConfig, write_dataset
    from actionrec.engines.runners import open_runner
    from actionrec.inference.predictor import Predictor
    from actionrec.models.refs import pin_model
    from actionrec.training.config import TrainConfig
    from actionrec.training.loop import train

    labels = read_labels(write_dataset(tmp / "synth", SynthConfig(per_class=12, seed=5, size=64, num_frames=32)))
    cfg = TrainConfig(arch="tiny3d", epochs=6, batch_size=8, seed=0)
    train(cfg, labels, out=tmp / "tiny" / "model.pt", progress=False)
    fresh = read_labels(write_dataset(tmp / "fresh", SynthConfig(per_class=12, seed=99, size=64, num_frames=32)))
    sets = {"fresh synthetic draw": [r.uri for r in fresh.rows],
            "real clips": sorted(str(p) for p in SHARED_VIDEOS.glob("*.mp4"))}
    fight = SHARED_VIDEOS.parent / "real" / "fight_surv" / "labels.csv"
    if fight.exists():
        sets["real clips"] += [r.uri for r in read_labels(fight).rows if r.split == "test"]
    pinned = pin_model(str(tmp / "tiny" / "model.pt"))
    choices = _choices()
    if importlib.util.find_spec("nncf") is not None:
        from actionrec.engines.choice import EngineChoice
        from actionrec.engines.quantize import quantize

        # calibrated on the training videos (what the model will see), checked on everything below
        quantize(pinned, [r.uri for r in labels.rows][::4], min_agreement=0.01)
        choices.append(EngineChoice("openvino", "int8", "cpu"))

    out = {}
    for name, uris in sets.items():
        results = {str(c): Predictor(open_runner(pinned, c),
                                     decode_backend="thread").predict_all(uris, clips=3)
                   for c in choices}
        base = results[str(choices[0])]
        for k, rs in results.items():
            pairs = [(a, b) for a, b in zip(base, rs, strict=True) if a.status == b.status == "ok"]
            out.setdefault(name, {})[k] = {
                "videos": len(pairs),
                "top1_agreement": sum(a.top_k[0].label == b.top_k[0].label for a, b in pairs) / max(len(pairs), 1),
                "max_prob_diff": max((float(np.abs(a.probs - b.probs).max()) for a, b in pairs), default=0.0)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="r2plus1d_18")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    videos = sorted(str(v) for v in SHARED_VIDEOS.glob("*.mp4"))
    if args.worker:
        print(json.dumps(worker(args.checkpoint, args.engine, videos)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        fast, checkpoint = speed(args.arch, args.batch, args.rounds, tmp_path)
        memory = {engine: in_subprocess("bench.engines", "--checkpoint", checkpoint, "--engine", engine)
                  for engine in ("torch", "openvino")}
        agree = agreement(tmp_path)
    print(f"{args.arch}, batch {args.batch}, {args.rounds} interleaved rounds (medians)")
    for k, v in fast.items():
        print(f"  {k:28} {v['s_per_clip']:.3f} s/clip  {v['vs_torch_f32']:.2f}x torch f32")
    print(f"a tag worker over {len(videos)} real clips (3 clips each):")
    for k, v in memory.items():
        print(f"  {k:9} peak RSS {v['peak_rss_mb']:.0f} MB, torch imported: {v['torch_imported']} ({v['engine']})")
    for name, per in agree.items():
        print(f"top-1 agreement with torch f32, {name}:")
        for k, v in per.items():
            print(f"  {k:28} {v['top1_agreement']:.1%} of {v['videos']} videos, max prob diff {v['max_prob_diff']:.2g}")
    print("results:", save(f"engines_{args.arch}", {"settings": vars(args), "speed": fast, "memory": memory,
                                                     "agreement": agree}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
