"""``clusterlens loop``: run the human-in-the-loop search from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = (
    "human-in-the-loop search: create, iterate (train + score + select), select, import "
    "decisions, apply, status, export"
)
DESCRIPTION = """\
Keep a lens search in one project file (SQLite) and step through the paper's loop.

  clusterlens loop create search.sqlite --objects clusters.fits
  clusterlens loop iterate search.sqlite --cutouts cutouts/ --train-data mocks/ --k 4000
  clusterlens loop iterate search.sqlite --cutouts cutouts/ --model runs/case1/best.pt
  clusterlens loop select search.sqlite --scores scores.parquet --k 4000
  clusterlens loop import search.sqlite decisions.csv
  clusterlens loop apply search.sqlite --add-negatives
  clusterlens loop status search.sqlite
  clusterlens loop export search.sqlite candidates.fits

The objects table needs an 'id' column (optional ra, dec, z, m500 in Msun, r500, shape_r);
a scores table needs 'id' and 'score' columns for objects still in the pool. 'iterate'
trains the network on --train-data plus the objects the search moved into training (or uses
--model as it is), scores the pool from the FITS cutouts in --cutouts and opens the top
objects; its runs and scores go into --work (default PROJECT.work/) and a killed iterate
resumes there. Decisions CSV
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
    p = sub.add_parser("iterate", help="train, score the pool and open its top objects")
    p.add_argument("project", type=Path)
    p.add_argument("--cutouts", type=Path, required=True, help="folder of FITS cutouts (fetch)")
    p.add_argument("--pattern", default="{cluster_id}.fits", help="cutout file name pattern")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--train-data", type=Path, help="base training dataset directory")
    which.add_argument("--model", type=Path, help="use this checkpoint; train nothing")
    p.add_argument("--val-data", type=Path, help="validation dataset (default: split)")
    p.add_argument("--work", type=Path, help="runs and scores folder (PROJECT.work)")
    p.add_argument("--preset", default="case1", choices=["case1", "case2"])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--network", default="resnet18")
    p.add_argument("--network-options", type=json.loads, default={}, help="JSON keywords")
    p.add_argument("--crop", type=int, default=223, help="training centre crop (0: none)")
    p.add_argument("--batch-size", type=int, default=64, help="scoring batch size")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--workers", type=int, default=1, help="local Dask scoring workers")
    p.add_argument("--scheduler", default=None, help="running Dask scheduler address")
    p.add_argument("--seed", type=int, default=0, help="training seed (0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
    from clusterlens.loop import Above, SearchProject, TopK

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
            Above(args.threshold) if args.threshold is not None else TopK(args.k),
        )
        print(f"iteration {it}: {len(project.selected(it))} objects open for inspection")
    elif args.action == "iterate" and _undecided_open_iteration(project) is not None:
        # an earlier run finished (a kill just after its last commit lost only the message):
        # its iteration is the result, not an error
        it = _undecided_open_iteration(project)
        print(
            f"iteration {it}: {len(project.selected(it))} objects open for inspection (made by "
            "an earlier run; nothing decided yet)"
        )
    elif args.action == "iterate":
        it = project.iterate(
            *_loop_trainer_and_scorer(project, args),
            Above(args.threshold) if args.threshold is not None else TopK(args.k),
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


def _undecided_open_iteration(project) -> int | None:
    """The open iteration, if it exists and nobody has decided anything in it yet."""
    it = project.open_iteration()
    if it is None or len(project.decisions(it)):
        return None
    return it


def _loop_trainer_and_scorer(project, args):
    """The real network's trainer and scorer for ``loop iterate``."""
    from clusterlens.loop.networks import (
        NetworkScorer,
        NetworkTrainer,
        PretrainedModel,
        project_positions,
    )
    from clusterlens.nets.scoring import ScoringConfig
    from clusterlens.nets.training import TrainingConfig
    from clusterlens.survey.cutouts import FitsDirectoryCutouts

    if not args.cutouts.is_dir():
        raise ClusterlensError(f"--cutouts {str(args.cutouts)!r} is not a folder.")
    source = FitsDirectoryCutouts(args.cutouts, pattern=args.pattern)
    positions = project_positions(project)
    work = args.work or args.project.with_name(args.project.name + ".work")
    if args.model is not None:
        trainer = PretrainedModel(args.model)
    else:
        config = TrainingConfig.preset(
            args.preset,
            epochs=args.epochs,
            network=args.network,
            network_options=args.network_options,
            crop=args.crop or None,
            device=args.device,
            progress=not args.quiet,
            seed=args.seed,
            threads=args.threads,
        )
        trainer = NetworkTrainer(
            args.train_data,
            source,
            positions,
            work,
            config=config,
            val_data=args.val_data,
            seed=args.seed,
        )
    scoring = ScoringConfig(
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        progress=not args.quiet,
    )
    scorer = NetworkScorer(
        source, positions, work, config=scoring, workers=args.workers, scheduler=args.scheduler
    )
    return trainer, scorer
