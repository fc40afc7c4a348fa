"""``clusterlens simulate``: write a training set of mock cluster lenses and negatives."""

from __future__ import annotations

import argparse
from pathlib import Path

from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "write N mock lenses + negatives (the paper's training set) to a dataset directory"
DESCRIPTION = """\
Simulate mock cluster lenses (section 2.2 and Table 1 of Zhang et al.) and untouched
negatives, half and half, into a clusterlens dataset directory, in parallel on Dask.

  clusterlens simulate --n 100000 --out train/                      # built-in sky, Table 1
  clusterlens simulate --config mock.toml --n 1000 --out val/ --seed 7 --workers 2
  clusterlens simulate --n 100000 --out train/ --scheduler tcp://10.0.0.5:8786
  clusterlens simulate --n 2000 --out real/ --clusters zou.fits --members members.fits \\
      --cutouts cutouts/

A killed run resumes where it stopped when started again with the same options. At the end
the realism report (distributions against the paper and the 485 published candidates, galleries
of lenses and hard negatives) is written to OUT/report/ (--no-report skips it). The TOML
configuration (every key optional, see docs/mock.md) has the tables [halo], [members],
[source], [placement], [selection], [image], [observation], [clusters].
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="TOML file (default Table 1)")
    parser.add_argument("--n", type=int, required=True, help="total images (half lenses)")
    parser.add_argument("--out", type=Path, required=True, help="dataset directory")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (0)")
    parser.add_argument("--positives", type=int, default=None, help="lenses (default n/2)")
    parser.add_argument("--workers", type=int, default=2, help="local Dask workers; 0: no Dask")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument("--batch-size", type=int, default=8, help="images per Dask task (8)")
    parser.add_argument("--clusters", type=Path, default=None, help="cluster catalog file")
    parser.add_argument("--members", type=Path, default=None, help="member catalog file")
    parser.add_argument("--cutouts", type=Path, default=None, help="folder of FITS cutouts")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument(
        "--quiet", "--no-progress", dest="no_progress", action="store_true", help="no progress bar"
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="do not write the realism report (OUT/report/) at the end",
    )
    parser.add_argument(
        "--candidates",
        type=Path,
        default=None,
        help="the published candidate catalog, drawn in the report (default: its summary)",
    )


def _catalog_sky(args, config):
    given = [a is not None for a in (args.clusters, args.members, args.cutouts)]
    if not any(given):
        return None
    if not all(given):
        raise ClusterlensError("--clusters, --members and --cutouts go together (a catalog sky).")
    from clusterlens.mock import CatalogSky
    from clusterlens.survey import FitsDirectoryCutouts, read_cluster_catalog, read_member_catalog

    return CatalogSky(
        FitsDirectoryCutouts(args.cutouts),
        read_cluster_catalog(args.clusters),
        read_member_catalog(args.members),
        config,
    )


def run(args: argparse.Namespace) -> int:
    from clusterlens.mock import MockConfig, acceptance_summary, load_config, simulate_dataset

    if getattr(args, "candidates", None) is not None and not Path(args.candidates).is_file():
        raise ClusterlensError(f"--candidates {str(args.candidates)!r} is not a file.")
    config = MockConfig() if args.config is None else load_config(args.config)
    sky = _catalog_sky(args, config)
    ds = simulate_dataset(
        args.out,
        args.n,
        config,
        seed=args.seed,
        n_positive=args.positives,
        sky=sky,
        workers=args.workers,
        scheduler=args.scheduler,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    n_lens = int((ds.labels == 1).sum())
    print(f"wrote {len(ds)} images ({n_lens} lenses, {len(ds) - n_lens} non-lenses) to {args.out}")
    if n_lens:
        a = acceptance_summary(ds.params)
        print(
            f"per lens: {a['clusters']:.2f} clusters, {a['halo_draws']:.2f} halo draws "
            f"({a['einstein_radius_acceptance']:.0%} pass the Einstein-radius cut, decided "
            f"before rendering), {a['sources']:.2f} rendered sources "
            f"({a['snr_acceptance']:.0%} pass the S/N rule)"
        )
    if not getattr(args, "no_report", False):
        return _report(ds, args)
    return 0


def _report(ds, args) -> int:
    """Write the realism report beside the images (``OUT/report``) unless it is up to date.

    The dataset is complete whatever happens here: a failed report is a warning and exit
    status 1, and running the same command again retries only the report."""
    import sys

    from clusterlens.mock.report import realism_report, report_is_complete

    out = Path(args.out) / "report"
    if report_is_complete(out, dataset=args.out):
        print(f"realism report up to date: {out}")
        return 0
    try:
        report = realism_report(ds, out, candidates=args.candidates)
    except Exception as exc:  # the images are safe; say so rather than lose them in a trace
        print(
            f"clusterlens simulate: the dataset is complete, but its realism report failed: "
            f"{exc}. Run the same command again to retry, or pass --no-report.",
            file=sys.stderr,
        )
        return 1
    theta = report.summary["einstein_radius"]["mocks"]
    arc = report.summary["arc_radius"]["mocks"]
    line = f"realism report: {report.path / 'summary.md'}"
    if theta:
        line += f' (theta_E median {theta["median"]:.1f}"'
        line += f', arc radius median {arc["median"]:.1f}")' if arc else ")"
    print(line)
    return 0
