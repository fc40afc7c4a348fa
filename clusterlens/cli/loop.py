"""``clusterlens loop``: run the human-in-the-loop search from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "human-in-the-loop search: create, select, import decisions, apply, status, export"
DESCRIPTION = """\
Keep a lens search in one project file (SQLite) and step through the paper's loop.

  clusterlens loop create search.sqlite --objects clusters.fits
  clusterlens loop select search.sqlite --scores scores.parquet --k 4000
  clusterlens loop import search.sqlite decisions.csv
  clusterlens loop apply search.sqlite --add-negatives
  clusterlens loop status search.sqlite
  clusterlens loop export search.sqlite candidates.fits

The objects table needs an 'id' column (optional ra, dec, z, m500 in Msun, r500, shape_r);
a scores table needs 'id' and 'score' columns for objects still in the pool. Decisions CSV
columns: object_id, iteration, grader, is_lens, grade, arc_points, decided_at.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("create", help="make a project from a table of objects to search")
    p.add_argument("project", type=Path)
    p.add_argument("--objects", type=Path, required=True, help="FITS/CSV/Parquet table")
    p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("select", help="record a scored iteration and open its top objects")
    p.add_argument("project", type=Path)
    p.add_argument("--scores", type=Path, required=True, help="table with id and score")
    p.add_argument("--model", default=None, help="model path to record with the iteration")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--k", type=int, default=4000, help="objects to inspect (4000)")
    group.add_argument("--threshold", type=float, help="inspect all with score >= this")
    p = sub.add_parser("import", help="import grader decisions from a CSV file")
    p.add_argument("project", type=Path)
    p.add_argument("csv", type=Path)
    p = sub.add_parser("apply", help="move confirmed lenses into training; close iteration")
    p.add_argument("project", type=Path)
    p.add_argument("--add-negatives", action="store_true")
    p.add_argument("--allow-undecided", action="store_true")
    p = sub.add_parser("status", help="print pool size, open iteration and Table 2")
    p.add_argument("project", type=Path)
    p = sub.add_parser("export", help="write the graded candidate catalogue (FITS or CSV)")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--overwrite", action="store_true")


def _read_table(path: Path):
    from astropy.table import Table

    if not path.is_file():
        raise ClusterlensError(f"No such file: {str(path)!r}.")
    fmt = {".csv": "ascii.csv", ".parquet": "parquet", ".ecsv": "ascii.ecsv"}.get(
        path.suffix.lower()
    )
    return Table.read(path, format=fmt) if fmt else Table.read(path)


def run(args) -> int:
    from clusterlens.loop import SearchProject

    if args.action == "create":
        p = SearchProject.create(args.project, _read_table(args.objects), overwrite=args.overwrite)
        print(f"{args.project}: {len(p.ids('pool'))} objects in the pool")
        return 0
    project = SearchProject(args.project)
    if args.action == "select":
        t = _read_table(args.scores)
        for col in ("id", "score"):
            if col not in t.colnames:
                raise ClusterlensError(f"{args.scores} has no {col!r} column.")
        it = project.record_iteration(
            args.model,
            [str(i) for i in t["id"]],
            t["score"],
            k=None if args.threshold is not None else args.k,
            threshold=args.threshold,
        )
        print(f"iteration {it}: {len(project.selected(it))} objects open for inspection")
    elif args.action == "import":
        print(f"imported {project.import_decisions_csv(args.csv)} decisions")
    elif args.action == "apply":
        row = project.apply(add_negatives=args.add_negatives, allow_undecided=args.allow_undecided)
        print(f"iteration {row['iteration']}: {row['new']} new, {row['cumulative']} in all")
    elif args.action == "status":
        print(
            f"pool: {len(project.ids('pool'))}, training positives: "
            f"{len(project.ids('positive'))}, negatives: {len(project.ids('negative'))}"
        )
        it = project.open_iteration()
        if it is not None:
            n_dec = len({r["object_id"] for r in project.decisions(it)})
            print(f"open iteration {it}: {n_dec} of {len(project.selected(it))} decided")
        project.table().pprint(max_lines=-1, max_width=-1)
    elif args.action == "export":
        t = project.export_catalog(args.out, overwrite=args.overwrite)
        print(f"{args.out}: {len(t)} candidates")
    project.close()
    return 0
