"""Does the model see frame order? Train on one synthetic draw, test on a fresh one (another seed).

    python -m bench.temporal_pairs                       # tiny3d vs order-blind tiny2d, same recipe
    python -m bench.temporal_pairs --recipes adamw sgd   # also the textbook SGD(0.01, 0.9) recipe

Reports top-1 on the fresh draw, and within-pair accuracy: among videos whose prediction lands in
the right temporal pair (left/right, grow/shrink, cw/ccw, appear/disappear), how often the right
member is chosen. An order-blind model cannot beat 50% there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.common import save

RECIPES = {"adamw": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05},
           "sgd": {"optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-4}}


def main(argv: list[str] | None = None) -> int:
    from actionrec.data.labels import read_labels
    from actionrec.data.synth import TEMPORAL_PAIRS, SynthConfig, write_dataset
    from actionrec.evaluation.evaluate import evaluate_model
    from actionrec.training.config import TrainConfig
    from actionrec.training.loop import train

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["tiny3d", "tiny2d"])
    p.add_argument("--recipes", nargs="+", default=["adamw"], choices=sorted(RECIPES))
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--test-per-class", type=int, default=25)
    args = p.parse_args(argv)
    pair_of = {a: i for i, pair in enumerate(TEMPORAL_PAIRS) for a in pair}
    pair_of.update({b: i for i, (_, b) in enumerate(TEMPORAL_PAIRS)})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train_labels = read_labels(write_dataset(Path(tmp) / "train", SynthConfig(per_class=args.per_class, seed=0)))
        test_labels = read_labels(write_dataset(Path(tmp) / "test", SynthConfig(per_class=args.test_per_class,
                                                                                 seed=12345)))
        print(f"{'arch':8} {'recipe':6} {'train s':>8} {'top-1':>7} {'pair acc':>9} {'within-pair':>12}")
        for recipe in args.recipes:
            for arch in args.archs:
                started = time.perf_counter()
                result = train(TrainConfig(arch=arch, epochs=args.epochs, **RECIPES[recipe]), train_labels,
                               progress=False)
                seconds = time.perf_counter() - started
                model = result.model
                ev = evaluate_model(model, list(test_labels.rows), clips=1)
                conf = ev.result.confusion
                classes = ev.result.classes
                same_pair = right = 0
                for i, ci in enumerate(classes):
                    for j, cj in enumerate(classes):
                        if pair_of[ci] == pair_of[cj]:
                            same_pair += conf[i][j]
                            right += conf[i][j] if i == j else 0
                n = ev.result.num_videos
                row = {"arch": arch, "recipe": recipe, "train_seconds": seconds, "top1": ev.result.top1,
                       "pair_accuracy": same_pair / n, "within_pair_accuracy": right / max(same_pair, 1),
                       "test_videos": n, "epochs": args.epochs, "best_val_top1": result.best_val_top1}
                rows.append(row)
                print(f"{arch:8} {recipe:6} {seconds:8.0f} {row['top1']:7.1%} {row['pair_accuracy']:9.1%} "
                      f"{row['within_pair_accuracy']:12.1%}", flush=True)
    print("results:", save("temporal_pairs", {"settings": vars(args), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
