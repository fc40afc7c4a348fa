"""``clusterlens score``: score a catalog of cutouts (or a dataset) with a trained network."""

from __future__ import annotations

import json
from pathlib import Path

from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "score cutouts or a dataset with a trained lens finder; resumable, Dask-parallel"
DESCRIPTION = """\
Run a checkpoint over every object of a catalog (cutouts from a folder of FITS files as
written by 'clusterlens fetch') or over a dataset directory, and write a table of id, ra,
dec, score (lens probability) and logit, sorted by decreasing score.

--model may be a committee manifest (several networks scored as one, see
clusterlens.nets.write_committee); a calibrated checkpoint gives calibrated scores.

Finished chunks are kept in OUT.parts/ until the table is written: a killed run resumes
when the same command is run again, and every object is scored exactly once.

example:
  clusterlens score --model runs/case1/best.pt --cutouts cutouts/ \\
      --catalog clusters.fits --out scores.parquet --workers 4
  clusterlens score --model runs/case1/best.pt --cutouts mocks_test/ --out test.parquet
  clusterlens score ... --scheduler tcp://10.0.0.1:8786     (a running Dask cluster)
"""


def add_symmetries_argument(parser) -> None:
    """``--symmetries``: the test-time views of
    :class:`~clusterlens.nets.scoring.ScoringConfig` (``score`` and ``evaluate`` share it)."""
    parser.add_argument(
        "--symmetries",
        type=int,
        default=1,
        choices=[1, 2, 4, 8],
        help="test-time views per image: 1 (none), 2, 4 (quarter turns) or 8 (and mirrors)",
    )


def add_arguments(parser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        help="checkpoint (RUN/best.pt) or committee manifest (.json)",
    )
    parser.add_argument(
        "--cutouts", required=True, type=Path, help="folder of FITS cutouts, or a dataset"
    )
    parser.add_argument("--catalog", type=Path, help="catalog (FITS/CSV/ECSV/Parquet)")
    parser.add_argument("--out", required=True, type=Path, help=".parquet/.fits/.csv/.ecsv")
    parser.add_argument("--id-column", default=None)
    parser.add_argument("--ra-column", default=None)
    parser.add_argument("--dec-column", default=None)
    parser.add_argument(
        "--pattern", default="{cluster_id}.fits", help="FITS file name pattern ({cluster_id})"
    )
    parser.add_argument(
        "--nan-policy",
        choices=["fill", "raise"],
        default="fill",
        help="FITS cutouts: repair a few NaN pixels (fill, default) or refuse them",
    )
    parser.add_argument("--size", type=int, help="network input side (default: training crop)")
    parser.add_argument("--bands", default="grz")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=4096, help="objects per saved part")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="autocast"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads per worker")
    add_symmetries_argument(parser)
    parser.add_argument("--read-workers", type=int, default=4, help="reader threads")
    parser.add_argument("--workers", type=int, default=1, help="local Dask worker processes")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument(
        "--skip-errors",
        action="store_true",
        help="give unreadable cutouts a NaN score (and an error column) instead of stopping",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT and its parts")
    parser.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from clusterlens.datasets import LensDataset
    from clusterlens.nets.scoring import Scorer, ScoringConfig
    from clusterlens.survey.catalogs import read_table
    from clusterlens.survey.cutouts import FitsDirectoryCutouts

    config = ScoringConfig(
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        size=args.size,
        bands=args.bands,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        symmetries=args.symmetries,
        read_workers=args.read_workers,
        on_error="skip" if args.skip_errors else "raise",
        progress=not args.quiet,
    )
    scorer = Scorer(args.model, config)
    if (args.cutouts / "zarr.json").is_file():
        source, catalog = LensDataset(args.cutouts), None
        if args.catalog is not None:
            raise ClusterlensError("--catalog is for FITS cutouts; a dataset lists its images.")
    elif args.cutouts.is_dir():
        if args.catalog is None:
            raise ClusterlensError("Scoring a folder of FITS cutouts needs --catalog.")
        source = FitsDirectoryCutouts(
            args.cutouts, pattern=args.pattern, nan_policy=args.nan_policy
        )
        catalog = read_table(args.catalog)
    else:
        raise ClusterlensError(f"--cutouts {str(args.cutouts)!r} is not a folder.")
    table = scorer.score(
        source,
        catalog,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        overwrite=args.overwrite,
        keep_parts=args.keep_parts,
        id_column=args.id_column,
        ra_column=args.ra_column,
        dec_column=args.dec_column,
    )
    top = table[0]
    print(
        json.dumps(
            {
                "out": str(args.out),
                "n_objects": len(table),
                "n_failed": table.meta["n_failed"],
                "top": {"id": str(top["id"]), "score": float(top["score"])},
            }
        )
    )
    return 0
