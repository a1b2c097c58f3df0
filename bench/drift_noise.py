"""The drift watch's noise floor and what real shifts measure, in Jensen-Shannon bits.

    python -m bench.drift_noise                       # the table behind the drift defaults
    python -m bench.drift_noise --trials 500 --sizes 50 100

"Same mix": a run of n videos drawn from one label mix against a window of 7 runs of n videos
drawn from the same mix, with ``actionrec.loop.drift.jensen_shannon``; the divergence is sampling
noise alone. "Shifted": the run drawn from a changed mix (10 labels, Zipf-distributed, which is
how archives look), the window from the old one. The default threshold must sit above the first
and below the second at the default minimum number of videos.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from actionrec.loop.drift import DEFAULT_WINDOW, jensen_shannon


def _zipf(k: int) -> np.ndarray:
    p = 1 / np.arange(1, k + 1)
    return p / p.sum()


def _shifts(k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (old mix, new mix), over k + 1 labels (the last one new)."""
    old = np.append(_zipf(k), 0.0)
    rare = np.eye(k + 1)[k - 1]
    return {
        "the two most frequent labels swap": (old, old[[1, 0, *range(2, k + 1)]]),
        "20% of videos move to the rarest label": (old, 0.8 * old + 0.2 * rare),
        "40% of videos move to the rarest label": (old, 0.6 * old + 0.4 * rare),
        "a new label takes 30%": (old, np.append(0.7 * _zipf(k), 0.3)),
        "a skewed mix turns uniform": (old, np.append(np.full(k, 1 / k), 0.0)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100, 200, 500], help="videos per run")
    ap.add_argument("--labels", type=int, nargs="+", default=[5, 10, 20, 50], help="labels in the mix")
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    w = DEFAULT_WINDOW

    def divergences(old: np.ndarray, new: np.ndarray, n: int) -> np.ndarray:
        return np.array([jensen_shannon(rng.multinomial(n, new).tolist(),
                                        rng.multinomial(n, old, size=w).sum(0).tolist()) for _ in range(args.trials)])

    rows = []
    print(f"same mix: a run of n videos against a window of {w} runs of n videos, {args.trials} trials")
    print(f"{'labels':>6} {'mix':8} {'n':>5} {'median':>7} {'p95':>7} {'p99':>7}")
    for k in args.labels:
        for name, p in (("uniform", np.full(k, 1 / k)), ("zipf", _zipf(k))):
            for n in args.sizes:
                v = divergences(p, p, n)
                row = {"kind": "same mix", "labels": k, "mix": name, "n": n, "median": float(np.median(v)),
                       "p95": float(np.quantile(v, 0.95)), "p99": float(np.quantile(v, 0.99))}
                rows.append(row)
                print(f"{k:>6} {name:8} {n:>5} {row['median']:7.3f} {row['p95']:7.3f} {row['p99']:7.3f}")
    print("\nshifted mix, 10 labels (zipf): exact divergence, then the measured one (median, 5th percentile)")
    for desc, (old, new) in _shifts(10).items():
        for n in args.sizes:
            v = divergences(old, new, n)
            row = {"kind": "shifted", "labels": 10, "shift": desc, "n": n, "exact": jensen_shannon(new.tolist(),
                                                                                                 old.tolist()),
                   "median": float(np.median(v)), "p5": float(np.quantile(v, 0.05))}
            rows.append(row)
            print(f"{desc:40} n={n:>4}: exact {row['exact']:.3f}, median {row['median']:.3f}, p5 {row['p5']:.3f}")
    if not args.no_save:
        from bench.common import save

        print("saved", save("drift_noise", {"window": w, "trials": args.trials, "seed": args.seed, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
