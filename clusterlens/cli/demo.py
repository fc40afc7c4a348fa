"""``clusterlens demo``: the paper's whole method on the built-in synthetic sky, to a report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clusterlens.errors import ClusterlensError, ParameterError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "run the whole method on a synthetic survey and write an HTML report (start here)"
DESCRIPTION = """\
Make a survey of synthetic cluster fields with injected lenses (the truth), simulate a
training set on other fields, train a (narrow) lens finder, score the survey, run search
iterations with simulated graders, grade, cross-match with the truth, and write
OUT/report.html with the paper's Figures 1, 2, 4, 5, 6, 7 and Table 2.

About 9 minutes on two CPU cores with the defaults; --quick takes under a minute. A killed
demo resumes when run again with the same options; finished steps are skipped.

examples:
  clusterlens demo --out demo/
  clusterlens demo --out demo-quick/ --quick
  clusterlens demo --out big/ --clusters 1000 --train-images 4000 --epochs 20 --iterations 4
  clusterlens demo --out real/ --cutouts cutouts/ --catalog clusters.fits --known known.fits
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="a small version (under a minute)")
    parser.add_argument("--clusters", type=int, help="synthetic fields in all (300; quick 60)")
    parser.add_argument("--train-images", type=int, help="training-set images (1200; quick 96)")
    parser.add_argument("--epochs", type=int, help="training epochs per iteration (20; quick 2)")
    parser.add_argument("--iterations", type=int, help="search iterations (2)")
    parser.add_argument("--k", type=int, help="objects inspected per iteration (survey/10)")
    parser.add_argument(
        "--widths",
        type=json.loads,
        help="ResNet-18 stage widths as JSON ('[8, 16, 32, 64]'; the paper's: [64,128,256,512])",
    )
    parser.add_argument("--crop", type=int, help="pixels the network sees (111; paper: 223)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--workers", type=int, help="Dask workers for simulation (2; quick 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--cutouts", type=Path, help="real data: folder of FITS cutouts")
    parser.add_argument("--catalog", type=Path, help="real data: catalog (id, ra, dec)")
    parser.add_argument("--known", type=Path, help="real data: known lenses (the truth)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


# Table 2's columns as a reader wants them in a terminal: a header and a value format.
# Scores are shown to 3 decimals, purity and completeness (fractions) as percentages.
_TABLE2_COLUMNS = {
    "iteration": ("iteration", "{:d}"),
    "threshold": ("threshold", "{:.3f}"),
    "threshold_tp": ("lowest new", "{:.3f}"),
    "n_selected": ("selected", "{:d}"),
    "new": ("new", "{:d}"),
    "cumulative": ("total", "{:d}"),
    "cum_A": ("A", "{:d}"),
    "cum_B": ("B", "{:d}"),
    "cum_C": ("C", "{:d}"),
    "purity": ("purity %", "{:.1f}"),
    "completeness": ("completeness %", "{:.1f}"),
}


def table2_lines(table) -> list[str]:
    """Table 2 (``SearchProject.table()``) as aligned text lines: readable headers, scores to
    3 decimals, purity and completeness in percent, a dash where a value is missing (NaN)."""
    import math

    names = [n for n in table.colnames if n in _TABLE2_COLUMNS]
    header = [_TABLE2_COLUMNS[n][0] for n in names]
    rows = []
    for row in table:
        cells = []
        for n in names:
            value = row[n].item() if hasattr(row[n], "item") else row[n]
            fmt = _TABLE2_COLUMNS[n][1]
            if isinstance(value, float) and not math.isfinite(value):
                cells.append("-")
            elif n in ("purity", "completeness"):
                cells.append(fmt.format(100 * float(value)))
            elif fmt.endswith("d}"):
                cells.append(fmt.format(int(value)))
            else:
                cells.append(fmt.format(float(value)))
        rows.append(cells)
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    return [
        "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        for cells in [header, *rows]
    ]


def run(args: argparse.Namespace) -> int:
    from clusterlens.demo import DemoConfig, run_demo

    widths = args.widths
    if widths is not None and (
        not isinstance(widths, list)
        or len(widths) != 4
        or not all(isinstance(w, int) and w > 0 for w in widths)
    ):
        raise ClusterlensError(
            f"--widths must be a JSON list of 4 positive integers. Got {widths!r}."
        )

    options = {
        "n_clusters": args.clusters,
        "n_train_images": args.train_images,
        "epochs": args.epochs,
        "iterations": args.iterations,
        "k": args.k,
        "widths": tuple(args.widths) if args.widths is not None else None,
        "crop": args.crop,
        "workers": args.workers,
        "seed": args.seed,
        "threads": args.threads,
        "progress": not args.quiet,
    }
    for name in ("cutouts", "catalog", "known"):
        path = getattr(args, name)
        if path is not None:
            if not path.exists():
                raise ClusterlensError(f"--{name} {str(path)!r} does not exist.")
            options[name] = str(path)
    options = {k: v for k, v in options.items() if v is not None}
    try:
        config = DemoConfig.quick(**options) if args.quick else DemoConfig(**options)
    except ParameterError as exc:
        raise ClusterlensError(str(exc)) from None
    result = run_demo(args.out, config)
    print(f"report: {result.report}")
    print("Table 2: the search, one row per iteration")
    print("\n".join(table2_lines(result.table)))
    print(result.summary["crossmatch"]["summary"])
    return 0
