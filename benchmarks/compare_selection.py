"""How many inspections does each selection strategy need to find the same number of lenses?

A simulated search with a real (narrow) network on a synthetic survey:

* base training set: mock cluster lenses and plain cluster fields from
  :func:`clusterlens.mock.simulate_dataset` (``SyntheticSky`` + ``MockLensSimulator``),
  64 x 64 pixel cutouts;
* survey: another simulated set with a known minority of injected lenses (the truth);
* each strategy runs ``--iterations`` iterations of the search loop (train from scratch on
  the base set plus everything graded so far, score the pool, inspect ``--k`` objects, a
  simulated grader answers from the truth), ``--repeats`` times with different seeds.

Strategies: ``top_k`` (the paper's), ``bald`` (BALD from Monte Carlo dropout, 20 draws),
``bald_mix`` (half of each K by score, half by BALD),
``bald_ensemble`` (BALD from an ensemble of networks trained with different seeds).

Run (a few minutes on 2 CPU cores; datasets are cached in ``--work``)::

    PYTHONPATH=. python benchmarks/compare_selection.py
    PYTHONPATH=. python benchmarks/compare_selection.py --toy   # toy arcs, seconds

``--gap`` trains on toy arcs (:func:`clusterlens.datasets.write_toy_dataset`) instead of the
mocks, so that the survey's lenses differ from the training set, as real lenses differ from
mocks (the situation the paper's loop, and active learning, are meant for).

It prints, per strategy, the mean (over repeats) of the lenses found after each iteration
and the inspections needed to find the number of lenses top K found by the end.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def _datasets(args):
    work = Path(args.work)
    if args.toy:
        from clusterlens.datasets import write_toy_dataset

        base = write_toy_dataset(work / "toy_base", args.n_train, size=32, arc_snr=6.0, seed=1)
        full = write_toy_dataset(work / "toy_survey", 2 * args.n_survey, size=32, arc_snr=4.0)
        labels = np.asarray(full.view_labels)
        keep = np.r_[
            np.flatnonzero(labels == 1)[: args.n_lenses],
            np.flatnonzero(labels == 0)[: args.n_survey - args.n_lenses],
        ]
        return base, full.subset(np.sort(keep))
    from clusterlens.mock import ImageConfig, MockConfig, simulate_dataset

    config = MockConfig(image=ImageConfig(cutout_size=96, crop_size=64))
    common = dict(workers=args.workers or 0, progress=True)
    if args.gap:  # training "mocks" that differ from the survey's lenses: toy arcs
        from clusterlens.datasets import write_toy_dataset

        base = write_toy_dataset(work / "gap_base", args.n_train, size=64, arc_snr=8.0, seed=1)
    else:
        base = simulate_dataset(work / "mock_base", args.n_train, config, seed=1, **common)
    survey = simulate_dataset(
        work / "mock_survey", args.n_survey, config, seed=2, n_positive=args.n_lenses, **common
    )
    return base, survey


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="compare_selection_work")
    parser.add_argument("--toy", action="store_true", help="toy arcs instead of mock lenses")
    parser.add_argument(
        "--gap",
        action="store_true",
        help="train on toy arcs, search a survey of mock lenses (mocks unlike the real lenses)",
    )
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-survey", type=int, default=400)
    parser.add_argument("--n-lenses", type=int, default=40)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ensemble-size", type=int, default=4)
    parser.add_argument("--strategies", default="top_k,bald,bald_mix,bald_ensemble")
    parser.add_argument("--workers", type=int, default=2, help="mock generation processes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    from clusterlens.loop.simulated_search import compare_selection
    from clusterlens.nets.training import TrainingConfig

    t0 = time.perf_counter()
    base, survey = _datasets(args)
    print(
        f"survey: {len(survey)} objects, {int(np.sum(survey.view_labels))} lenses; "
        f"training: {len(base)} ({time.perf_counter() - t0:.0f} s)"
    )
    strategies = args.strategies.split(",")
    found = {s: [] for s in strategies}
    for repeat in range(args.repeats):
        config = TrainingConfig(
            network="resnet18",
            network_options={"widths": [8, 16, 32, 64], "dropout": args.dropout},
            epochs=args.epochs,
            lr=3e-3,
            weight_decay=0.0,
            crop=None,
            batch_size=16,
            max_shift=2,
            progress=False,
            seed=100 * repeat,
        )
        table = compare_selection(
            base,
            survey,
            Path(args.work) / f"run{repeat}",
            config,
            strategies=strategies,
            k=args.k,
            n_iterations=args.iterations,
            ensemble_size=args.ensemble_size,
            seed=repeat,
        )
        for s in strategies:
            found[s].append(np.asarray(table["lenses_found"][table["strategy"] == s]))
        print(f"repeat {repeat} done ({time.perf_counter() - t0:.0f} s)")
    inspected = args.k * np.arange(1, args.iterations + 1)
    print(f"\nlenses found (mean of {args.repeats}) after N inspections, K = {args.k}:")
    print("strategy       " + "".join(f"{n:>8d}" for n in inspected))
    for s in strategies:
        mean = np.mean(found[s], axis=0)
        print(f"{s:<15}" + "".join(f"{m:8.1f}" for m in mean))
    target = np.mean(found[strategies[0]], axis=0)[-1]
    print(f"\ninspections to find {target:.1f} lenses (linear interpolation; '>' not reached):")
    for s in strategies:
        mean = np.r_[0.0, np.mean(found[s], axis=0)]
        steps = np.r_[0, inspected]
        if mean[-1] >= target:
            j = int(np.argmax(mean >= target))
            frac = (target - mean[j - 1]) / max(mean[j] - mean[j - 1], 1e-9)
            print(f"{s:<15}{steps[j - 1] + frac * args.k:8.0f}")
        else:
            print(f"{s:<15}{'>' + str(inspected[-1]):>8}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
