"""``clusterlens fetch``: download a catalog's cutouts into a folder, resumably."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clusterlens.errors import ClusterlensError
from clusterlens.survey.catalogs import find_column, read_table
from clusterlens.survey.legacy import DEFAULT_BASE_URL, LAYERS, LegacySurveyCutouts

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "fetch the Legacy Surveys cutouts of a catalog's objects into a folder"
DESCRIPTION = f"""\
Fetch one FITS cutout (g, r, z; nanomaggies; north up, east left) per catalog row from the
Legacy Surveys viewer into DIR/<id>.fits. Finished files are skipped, so running the same
command again resumes; failures are listed (and written to DIR/failures.ecsv) instead of
stopping the run. Exit status 0 when every cutout is there, 1 when some failed.

The catalog may be FITS, CSV, ECSV or Parquet; the id and position columns are found among
common names (cluster_id/CLUSTER_ID/id, ra/RA/RA_BCG, dec/DEC/DEC_BCG) or named with
--id-column/--ra-column/--dec-column.

example:
  clusterlens fetch --catalog zhang2026_cluster_lens_candidates.csv --out cutouts \\
      --layer ls-dr8 --size 371 --cache ~/.cache/clusterlens
  (service: {DEFAULT_BASE_URL}; layers: {", ".join(LAYERS)})
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, type=Path, help="catalog file")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="cutout service root")
    parser.add_argument("--layer", default="ls-dr9", help="imaging layer (default ls-dr9)")
    parser.add_argument("--size", type=int, default=371, help="side in pixels (default 371)")
    parser.add_argument("--pixscale", type=float, default=0.262, help="arcsec/pixel")
    parser.add_argument("--bands", default="grz", help="bands (default grz)")
    parser.add_argument("--cache", type=Path, default=None, help="raw download cache folder")
    parser.add_argument("--workers", type=int, default=4, help="concurrent requests")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=4, help="retries per cutout")
    parser.add_argument("--backoff", type=float, default=2.0, help="first retry wait (s)")
    parser.add_argument(
        "--max-backoff", type=float, default=60.0, help="longest wait between retries (s)"
    )
    parser.add_argument(
        "--max-transfer-time",
        type=float,
        default=600.0,
        help="seconds allowed for one whole download (default 600)",
    )
    parser.add_argument("--id-column", default=None)
    parser.add_argument("--ra-column", default=None)
    parser.add_argument("--dec-column", default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--overwrite", action="store_true", help="fetch finished files again")
    parser.add_argument(
        "--no-progress", "--quiet", action="store_true", help="hide the progress bar"
    )
    parser.add_argument(
        "--any-layer", action="store_true", help="accept a layer name not in the known list"
    )


def run(args: argparse.Namespace) -> int:
    from clusterlens.survey.fetch import fetch_cutouts

    if args.workers < 1:
        raise ClusterlensError(f"--workers must be an integer >= 1. Got {args.workers}.")
    table = read_table(args.catalog)
    if args.limit is not None:
        if args.limit < 1:
            raise ClusterlensError(f"--limit must be >= 1. Got {args.limit}.")
        table = table[: args.limit]
    source = LegacySurveyCutouts(
        args.base_url,
        layer=args.layer,
        pixel_scale=args.pixscale,
        cache_dir=args.cache,
        timeout=args.timeout,
        retries=args.retries,
        backoff=args.backoff,
        max_backoff=args.max_backoff,
        max_transfer_time=args.max_transfer_time,
        max_concurrent=args.workers,
        check_layer=not args.any_layer,
    )
    summary = fetch_cutouts(
        table,
        source,
        args.out,
        size=args.size,
        bands=args.bands,
        id_column=find_column(table, args.id_column, "id", "--id-column"),
        ra_column=find_column(table, args.ra_column, "ra", "--ra-column"),
        dec_column=find_column(table, args.dec_column, "dec", "--dec-column"),
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(summary.report())
    if not summary.ok:
        print(f"failures written to {args.out / 'failures.ecsv'}", file=sys.stderr)
    return 0 if summary.ok else 1
