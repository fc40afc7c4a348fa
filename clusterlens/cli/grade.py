"""``clusterlens grade``: import graders' decisions and aggregate the candidates' grades."""

from __future__ import annotations

import argparse
from pathlib import Path

from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "import graders' grades and aggregate them with the paper's rule; export the catalog"
DESCRIPTION = """\
Grade the candidates of a search project (section 4.1 of Zhang et al.): import the graders'
decisions from CSV files (all rows checked before any is written), aggregate each found
lens's grades with the paper's rule (A and C votes cancel in pairs, then the majority of
what remains; clusterlens.loop.aggregate_grades), and print or export the graded catalog.

Decisions CSV columns: object_id, iteration, grader, is_lens, grade (A/B/C), arc_points
(JSON [[x, y], ...] in arcsec from the BCG, optional), decided_at (optional). A grader who
grades an object again replaces the earlier grade.

examples:
  clusterlens grade search.sqlite --import ann.csv --import bob.csv
  clusterlens grade search.sqlite --final
  clusterlens grade search.sqlite --final --out candidates.fits
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", type=Path, help="search project file (clusterlens loop)")
    parser.add_argument(
        "--import",
        dest="imports",
        type=Path,
        action="append",
        default=[],
        metavar="CSV",
        help="decisions CSV to import first (repeatable)",
    )
    parser.add_argument(
        "--final", action="store_true", help="print every candidate with its aggregated grade"
    )
    parser.add_argument("--out", type=Path, help="write the graded catalog (.fits or .csv)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out")


def run(args: argparse.Namespace) -> int:
    from astropy.table import Table

    from clusterlens.loop import SearchProject

    if not args.project.is_file():
        raise ClusterlensError(f"No project file {str(args.project)!r} (clusterlens loop create).")
    for path in args.imports:
        if not path.is_file():
            raise ClusterlensError(f"No decisions file {str(path)!r}.")
    if args.out is not None and args.out.suffix.lower() not in (".fits", ".csv"):
        raise ClusterlensError(f"--out must end in .fits or .csv. Got {str(args.out)!r}.")
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise ClusterlensError(f"{str(args.out)!r} exists; pass --overwrite to replace it.")
    with SearchProject(args.project) as project:
        for path in args.imports:
            print(f"{path}: imported {project.import_decisions_csv(path)} decisions")
        grades = project.final_grades()
        counts = {g: sum(v["grade"] == g for v in grades.values()) for g in ("A", "B", "C", "")}
        graders = sorted({name for v in grades.values() for name in v["graders"]})
        print(
            f"{len(grades)} candidates: {counts['A']} A, {counts['B']} B, {counts['C']} C, "
            f"{counts['']} ungraded; graders: {', '.join(graders) or 'none'}"
        )
        if args.final:
            rows = [
                (oid, v["grade"] or "-", len(v["graders"]), v["mean"], v["std"])
                for oid, v in grades.items()
            ]
            names = ("id", "grade", "n_graders", "grade_mean", "grade_std")
            table = Table(rows=rows, names=names) if rows else Table(names=names)
            table.pprint(max_lines=-1, max_width=-1)
        if args.out is not None:
            t = project.export_catalog(args.out, overwrite=args.overwrite)
            print(f"wrote {len(t)} candidates to {args.out}")
    return 0
