"""``clusterlens crossmatch``: compare a candidate catalog with a catalog of known objects."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "match candidates with known objects on the sky: matched, new and missed"
DESCRIPTION = """\
Match two catalogs one to one within a radius (closest pairs first) and report how many
candidates were already known (matched), how many are new, and how many known objects no
candidate matched (missed), as in section 4.2 of Zhang et al. Positions in degrees; the
RA/Dec columns are found among ra/RA/RA_BCG/RAJ2000 (and the Dec twins) or named.
With --out PREFIX, writes PREFIX_matched.ecsv, PREFIX_new.ecsv and PREFIX_missed.ecsv.

example:
  clusterlens crossmatch ours.csv storfer2024.fits --radius 10 --out cmp/storfer
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("candidates", type=Path, help="candidate catalog file")
    parser.add_argument("known", type=Path, help="catalog of known objects")
    parser.add_argument("--radius", type=float, default=5.0, help="arcsec (default 5)")
    parser.add_argument("--candidate-columns", nargs=2, metavar=("RA", "DEC"), default=None)
    parser.add_argument("--known-columns", nargs=2, metavar=("RA", "DEC"), default=None)
    parser.add_argument("--out", default=None, help="prefix of the output tables")
    parser.add_argument("--overwrite", action="store_true")


def _positions(table, given, which):
    from clusterlens.survey.catalogs import find_column

    if given is not None:
        return tuple(given)
    option = f"--{which}-columns"
    return find_column(table, None, "ra", option), find_column(table, None, "dec", option)


def run(args: argparse.Namespace) -> int:
    from clusterlens.survey.catalogs import read_table, write_table
    from clusterlens.survey.crossmatch import crossmatch

    cands = read_table(args.candidates)
    known = read_table(args.known)
    result = crossmatch(
        cands,
        known,
        radius=args.radius,
        candidate_columns=_positions(cands, args.candidate_columns, "candidate"),
        known_columns=_positions(known, args.known_columns, "known"),
    )
    print(result.summary())
    if args.out is not None:
        for name in ("matched", "new", "missed"):
            path = Path(f"{args.out}_{name}.ecsv")
            write_table(getattr(result, name), path, overwrite=args.overwrite)
            print(f"wrote {path}")
    return 0
