"""Fetching the cutouts of a whole catalog into a folder, resumably.

Each object's cutout is written to ``<out_dir>/<cluster_id>.fits`` (atomically), the layout
that :class:`~clusterlens.survey.FitsDirectoryCutouts` reads back. Files already there and
readable are skipped, so an interrupted run picks up where it stopped. Failures do not stop
the run: they are collected, with the object's id and the reason, in the returned
:class:`FetchSummary` and written to ``<out_dir>/failures.ecsv``.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from clusterlens._progress import progress as progress_bar
from clusterlens._validation import check_int
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.survey.catalogs import write_table
from clusterlens.survey.cutouts import (
    CutoutSource,
    check_bands,
    check_size,
    write_cutout_fits,
)

__all__ = ["FetchSummary", "fetch_cutouts"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class FetchSummary:
    """What :func:`fetch_cutouts` did.

    Attributes
    ----------
    fetched : list
        Ids whose cutouts were written in this run.
    skipped : list
        Ids whose files were already complete.
    failures : Table
        ``cluster_id``, ``ra``, ``dec``, ``reason`` of every object that failed.
    """

    fetched: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failures: Table = field(default_factory=Table)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return len(self.failures) == 0

    def report(self, *, max_lines: int = 20) -> str:
        """A human-readable summary, listing up to ``max_lines`` failures."""
        lines = [
            f"{len(self.fetched)} fetched, {len(self.skipped)} already present, "
            f"{len(self.failures)} failed"
        ]
        for row in self.failures[:max_lines]:
            lines.append(f"  {row['cluster_id']}: {row['reason']}")
        if len(self.failures) > max_lines:
            lines.append(f"  ... and {len(self.failures) - max_lines} more")
        return "\n".join(lines)


def _complete(path) -> bool:
    """Whether a cutout file looks finished: a FITS start and a whole number of blocks.

    Files are written atomically, so this cheap test (no pixels read, which matters when
    resuming a 540,000-object run) only has to catch files damaged by other programs.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            start = f.read(9)
    except OSError:
        return False
    return size > 0 and size % 2880 == 0 and start == b"SIMPLE  ="


#: A ``.part`` file older than this [s] belongs to no live write (files are written in
#: milliseconds, after their download): it was left by a killed run.
STRAY_PART_AGE = 600.0


def _remove_stray_parts(folder: Path, max_age: float = STRAY_PART_AGE) -> int:
    """Delete the temporary ``.*.part`` files killed runs left in ``folder`` (and one level
    of subfolders, as in the download cache); returns how many."""
    now, removed = time.time(), 0
    for pattern in (".*.part", "*/.*.part"):
        for path in folder.glob(pattern):
            try:
                if now - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed += 1
            except OSError:  # gone meanwhile, or not ours to delete
                continue
    return removed


def fetch_cutouts(
    catalog: Table,
    source: CutoutSource,
    out_dir,
    *,
    size: int,
    bands="grz",
    id_column: str = "cluster_id",
    ra_column: str = "ra",
    dec_column: str = "dec",
    workers: int = 4,
    overwrite: bool = False,
    progress: bool = True,
) -> FetchSummary:
    """Fetch every object's cutout from ``source`` into ``out_dir``.

    Parameters
    ----------
    catalog : Table
        One row per object, with an id and a position [deg].
    source : CutoutSource
        Where the cutouts come from (a :class:`~clusterlens.survey.LegacySurveyCutouts`,
        for instance; its own ``max_concurrent`` still bounds the requests in flight).
    out_dir : str or path-like
        Destination folder, created if needed.
    size : int
        Cutout side [pixels].
    bands : str or sequence of str
    id_column, ra_column, dec_column : str
        Catalog columns of the id (used as the file name, so letters, digits and ``_.+-``
        only) and of the position.
    workers : int
        Threads issuing requests.
    overwrite : bool
        Fetch again even when a complete file exists, bypassing the source's cache.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    FetchSummary
    """
    if not isinstance(source, CutoutSource):
        raise ParameterError(
            "The 'source' parameter of fetch_cutouts must be a CutoutSource. "
            f"Got {type(source).__name__} instead."
        )
    if not isinstance(catalog, Table):
        raise ParameterError(
            "The 'catalog' parameter of fetch_cutouts must be an astropy Table. "
            f"Got {type(catalog).__name__} instead."
        )
    for col in (id_column, ra_column, dec_column):
        if col not in catalog.colnames:
            raise ClusterlensError(
                f"The catalog has no column {col!r} (columns: {', '.join(catalog.colnames)})."
            )
    workers = check_int(workers, "workers", "fetch_cutouts", low=1)
    size = check_size(size, "fetch_cutouts")
    bands = check_bands(bands, "fetch_cutouts")
    ids = [str(v).strip() for v in catalog[id_column]]
    bad_ids = [i for i in ids if not _SAFE_ID.match(i)]
    if bad_ids:
        raise ClusterlensError(
            f"Column {id_column!r} holds ids unfit for file names, e.g. {bad_ids[0]!r}: use "
            "letters, digits and _.+- only."
        )
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ClusterlensError(f"Column {id_column!r} holds the id {dup!r} more than once.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ras = np.asarray(catalog[ra_column], dtype=np.float64)
    decs = np.asarray(catalog[dec_column], dtype=np.float64)

    fetched, skipped, failed = [], [], []
    todo = []
    for i, cid in enumerate(ids):
        if not overwrite and _complete(out_dir / f"{cid}.fits"):
            skipped.append(cid)
        else:
            todo.append(i)

    _remove_stray_parts(out_dir)
    cache_dir = getattr(source, "cache_dir", None)
    if cache_dir is not None and Path(cache_dir).is_dir():
        _remove_stray_parts(Path(cache_dir))

    def one(i):
        cid = ids[i]
        if overwrite:  # fetch anew: a cached answer must not come back
            source.invalidate(float(ras[i]), float(decs[i]), size, bands)
        image, header = source.get(float(ras[i]), float(decs[i]), size, bands, cluster_id=cid)
        header["CLUSTID"] = (cid, "catalog id")
        header.setdefault("RA", (float(ras[i]), "requested centre [deg]"))
        header.setdefault("DEC", (float(decs[i]), "requested centre [deg]"))
        write_cutout_fits(out_dir / f"{cid}.fits", image, header)
        return cid

    bar = progress_bar(
        total=len(ids), initial=len(skipped), disable=not progress, unit="cutout", desc="fetch"
    )
    pending: dict = {}
    queue = iter(todo)
    # A bounded window of submitted tasks: memory stays flat for a 540,000-row catalog,
    # and an interrupt cancels what has not started instead of fetching it all first.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            while True:
                for i in queue:
                    pending[pool.submit(one, i)] = i
                    if len(pending) >= 4 * workers:
                        break
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        fetched.append(fut.result())
                    except (ClusterlensError, OSError, ValueError) as exc:
                        failed.append((ids[i], ras[i], decs[i], str(exc)))
                    bar.update(1)
                bar.set_postfix(failed=len(failed), refresh=False)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
        finally:
            bar.close()
    failed.sort(key=lambda r: ids.index(r[0]))
    failures = Table(
        rows=failed or None,
        names=("cluster_id", "ra", "dec", "reason"),
        dtype=(str, float, float, str),
    )
    path = out_dir / "failures.ecsv"
    if len(failures):
        write_table(failures, path, overwrite=True)
    else:
        path.unlink(missing_ok=True)
    return FetchSummary(fetched=fetched, skipped=skipped, failures=failures)
