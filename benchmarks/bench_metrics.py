"""Time clusterlens.metrics against scikit-learn on a survey-sized score list.

Usage: ``PYTHONPATH=. python benchmarks/bench_metrics.py [--n 540432] [--check]``.
Prints both times and the ratio (sklearn time / ours); with ``--check`` exits 1 when a
ratio falls below its floor.
"""

import argparse
import sys
import time

import numpy as np

from clusterlens import metrics

FLOORS = {"roc_auc": 0.5, "precision_recall_curve": 0.5}


def _best(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=540_432, help="number of scores")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    from sklearn import metrics as sk

    rng = np.random.default_rng(0)
    y = (rng.uniform(size=args.n) < 0.01).astype(int)
    s = np.round(rng.normal(size=args.n) + 2 * y, 3)  # rounded: many ties, like saturated scores
    pairs = {
        "roc_auc": (lambda: metrics.roc_auc(y, s), lambda: sk.roc_auc_score(y, s)),
        "precision_recall_curve": (
            lambda: metrics.precision_recall_curve(y, s),
            lambda: sk.precision_recall_curve(y, s),
        ),
    }
    ok = True
    for name, (ours, ref) in pairs.items():
        t_ours, t_ref = _best(ours), _best(ref)
        ratio = t_ref / t_ours
        flag = "" if ratio >= FLOORS[name] else f"  BELOW FLOOR {FLOORS[name]}"
        ok &= ratio >= FLOORS[name]
        print(f"{name:24s} ours {t_ours:.3f} s  sklearn {t_ref:.3f} s  ratio {ratio:.2f}{flag}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
