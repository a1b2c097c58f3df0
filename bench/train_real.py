"""What the training defaults reach on real footage, and what each part of the recipe buys.

    python -m bench.train_real                      # today's defaults, then the ablation rows
    python -m bench.train_real --rows default       # only today's defaults
    python -m bench.train_real --rows default,no_motion --seeds 0,1

Trains with ``actionrec.training.train`` on the ``train`` split of ../shared/real/fight_surv
(300 real 2-second surveillance clips, fight / no_fight), keeps the epoch with the best ``val``
top-1, and reports top-1 on ``test`` through ``evaluate_model`` (the engine and clips that
``actionrec evaluate`` uses by default). Each ablation row is today's defaults with one part of
the recipe taken away; ``old_recipe`` is the defaults before the recipe (a square centre crop of
RGB frames, no mirror). Rows are written to bench/results/train_real.json as they finish.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import SHARED_VIDEOS, save

FIGHT = SHARED_VIDEOS.parent / "real" / "fight_surv" / "labels.csv"

ROWS: dict[str, dict[str, Any]] = {
    "default": {},
    "square_crop": {"spec_overrides": {"crop_width": None}},  # a 64 x 64 centre crop of the 16:9 frame
    "no_motion": {"arch": "tiny3d", "spec_overrides": {"crop_width": 112}},  # RGB frames only
    "no_mirror": {"hflip": "declared"},  # fight_surv declares no mirror rule: no flips
    "old_recipe": {"arch": "tiny3d", "hflip": "declared"},
}


def run_row(name: str, seed: int, labels: Any) -> dict[str, Any]:
    from actionrec.evaluation.evaluate import evaluate_model
    from actionrec.training.config import TrainConfig
    from actionrec.training.loop import train

    cfg = TrainConfig.from_options(ROWS[name], seed=seed)
    started = time.perf_counter()
    result = train(cfg, labels, progress=False)
    train_s = time.perf_counter() - started
    ev = evaluate_model(result.model, list(labels.split("test")))
    return {"row": name, "seed": seed, "changes": ROWS[name], "arch": cfg.arch,
            "input": list(result.model.spec.clip_shape[:3]), "epochs": cfg.epochs, "best_epoch": result.best_epoch,
            "val_top1": result.best_val_top1, "test_top1": ev.result.top1, "test_videos": ev.result.num_videos,
            "train_s": round(train_s, 1), "total_s": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from {', '.join(ROWS)}")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--name", default="train_real")
    args = p.parse_args(argv)
    if not FIGHT.exists():
        print(f"{FIGHT} is absent: this benchmark needs ../shared/real/fight_surv")
        return 0
    from actionrec.data.labels import read_labels

    labels = read_labels(FIGHT)
    rows = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows: {', '.join(unknown)}")
    done: list[dict[str, Any]] = []
    for name in rows:
        for seed in (int(s) for s in args.seeds.split(",")):
            done.append(run_row(name, seed, labels))
            print(json.dumps(done[-1]), flush=True)
            path = save(args.name, {"labels": str(FIGHT), "rows": done})
    print(f"wrote {Path(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
