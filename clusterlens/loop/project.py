"""A human-in-the-loop lens search kept in one SQLite file: :class:`SearchProject`.

The loop of Zhang et al. (2026, section 3.3 and Table 2): train, score the pool of objects
still to search, inspect the top of the list, move the confirmed lenses from the pool into
the training positives, retrain, and repeat until new discoveries dry up; then grade the
candidates A/B/C with several graders and publish a catalogue.

Every change is one SQLite transaction in a write-ahead-log database with full
synchronisation, so a process killed at any moment loses no decision already saved and
leaves no change half-applied; reopening the file resumes where the search stopped. Several
graders (threads or processes) may write at the same time: writers wait for each other
(busy timeout) and retry.

:class:`SearchProject` is assembled from parts, one module each, in the order of the loop:

==========================================  ==================================================
:mod:`clusterlens.loop._store`              the file: checks, connections, transactions,
                                            migrations
this module                                 creating a project, its objects (the pool)
:mod:`clusterlens.loop.iteration`           train, score, select (:mod:`~clusterlens.loop.
                                            selection`'s strategies), apply
:mod:`clusterlens.loop.decisions`           graders' decisions, CSV import, grader positions
:mod:`clusterlens.loop.catalogue`           final grades, Table 2, Figure 6, the catalogue
==========================================  ==================================================
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clusterlens._validation import check_array, check_int
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop._store import now
from clusterlens.loop.catalogue import CATALOG_COLUMNS, CatalogueMixin
from clusterlens.loop.decisions import DecisionsMixin
from clusterlens.loop.iteration import IterationMixin, Scorer, Trainer

if TYPE_CHECKING:  # for annotations only
    from astropy.table import Table

__all__ = ["Trainer", "Scorer", "SearchProject", "CATALOG_COLUMNS"]


class SearchProject(IterationMixin, DecisionsMixin, CatalogueMixin):
    """A lens search kept in one SQLite database file.

    Create one with :meth:`create` (from a table of the objects to search), open an existing
    one with ``SearchProject(path)``. A project object may be shared by threads (each thread
    gets its own connection); other processes simply open the same path.

    The methods, by step of the search: the objects (:meth:`create`, :meth:`add_objects`,
    :meth:`ids`, :meth:`positions`, :meth:`set_image_geometry`); an iteration
    (:meth:`iterate` with a selection strategy, :meth:`record_iteration`, :meth:`selected`,
    :meth:`inspection_queue`, :meth:`scores`, :meth:`apply`, :meth:`iterations`); the
    graders (:meth:`record_decision`, :meth:`import_decisions_csv`, :meth:`delete_decision`,
    :meth:`undo_decision`, :meth:`decisions`, :meth:`decision_records`,
    :meth:`set_grader_position`); the results (:meth:`final_grades`, :meth:`table`,
    :meth:`should_stop`, :meth:`plot_progress`, :meth:`export_catalog`).

    Parameters
    ----------
    path : str or Path
        The project file (``.sqlite``); it must exist.
    timeout : float
        Seconds a writer waits for another writer before retrying (SQLite busy timeout).
    """

    # -- creation and objects -----------------------------------------------------------------

    @classmethod
    def create(
        cls, path, objects, *, overwrite: bool = False, timeout: float = 30.0
    ) -> SearchProject:
        """Make a new project file holding the pool of ``objects`` to search.

        Parameters
        ----------
        path : str or Path
            Where to write the database; an existing file is an error unless ``overwrite``.
        objects : astropy Table or mapping of columns
            Column ``id`` (any type, stored as text) is required; ``ra``, ``dec`` (deg),
            ``z`` and ``m500`` (Msun) are optional; every other column (e.g. ``r500`` in
            Mpc, ``shape_r`` in arcsec, used by :meth:`export_catalog`) is kept as extra
            data. The file is built under a temporary name and renamed when complete.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise ClusterlensError(f"{str(path)!r} exists; pass overwrite=True to replace it.")
        tmp = path.with_name(path.name + ".tmp")
        for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            p.unlink(missing_ok=True)
        sqlite3.connect(tmp).close()
        project = cls(tmp, timeout=timeout, _creating=True)
        project._transaction(
            lambda conn: conn.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(now()),))
        )
        project.add_objects(objects)
        project._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        project._conn().execute("PRAGMA journal_mode=DELETE")
        project.close()
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, path)
        return cls(path, timeout=timeout)

    def set_image_geometry(self, cutout_size: int, crop: int) -> None:
        """Record the side of the project's cutouts and of the network's centre crop
        [pixels], so that ``clusterlens inspect`` shows them without being told."""
        owner = "SearchProject.set_image_geometry"
        for name, value in (("cutout_size", cutout_size), ("crop", crop)):
            check_int(value, name, owner, low=1)
        if crop > cutout_size:
            raise ParameterError(
                f"The 'crop' parameter of {owner} ({crop}) must not exceed 'cutout_size' "
                f"({cutout_size})."
            )
        value = json.dumps({"cutout_size": int(cutout_size), "crop": int(crop)})
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO meta VALUES ('image_geometry', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (value,),
            )
        )

    @property
    def image_geometry(self) -> tuple[int, int] | None:
        """``(cutout_size, crop)`` [pixels] recorded by :meth:`set_image_geometry`, or
        ``None``."""
        rows = self._read("SELECT value FROM meta WHERE key = 'image_geometry'")
        if not rows:
            return None
        g = json.loads(rows[0][0])
        return int(g["cutout_size"]), int(g["crop"])

    def add_objects(self, objects) -> int:
        """Add objects to the pool (one transaction); returns how many were added."""
        names = list(objects.colnames if hasattr(objects, "colnames") else objects.keys())
        if "id" not in names:
            raise ParameterError(
                f"The 'objects' parameter of SearchProject must have an 'id' column. Got {names}."
            )
        n = len(objects["id"])
        core = {}
        for col, (lo, hi) in {
            "ra": (0, 360),
            "dec": (-90, 90),
            "z": (0, None),
            "m500": (0, None),
        }.items():
            if col in names:
                core[col] = check_array(
                    objects[col], f"objects[{col!r}]", "SearchProject", ndim=1, low=lo, high=hi
                )
        extra_cols = [c for c in names if c not in core and c != "id"]
        rows = []
        ids = [str(v) for v in objects["id"]]
        if len(set(ids)) != n:
            raise ParameterError(
                "The 'id' column of the objects given to SearchProject has duplicate values."
            )
        for i in range(n):
            extra = {c: _jsonable(objects[c][i]) for c in extra_cols}
            rows.append(
                (
                    ids[i],
                    *(float(core[c][i]) if c in core else None for c in ("ra", "dec", "z", "m500")),
                    json.dumps(extra),
                )
            )

        def work(conn):
            try:
                conn.executemany(
                    "INSERT INTO objects (id, ra, dec, z, m500, extra) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                raise ParameterError(f"Objects already in the project: {exc}.") from exc
            return len(rows)

        return self._transaction(work)

    def ids(self, status: str = "pool") -> list[str]:
        """Object ids with ``status`` ``"pool"`` (still to search), ``"positive"`` or
        ``"negative"`` (moved into training by the loop)."""
        if status not in ("pool", "positive", "negative"):
            raise ParameterError(
                f"The 'status' parameter of ids must be 'pool', 'positive' or "
                f"'negative'. Got {status!r}."
            )
        return [
            r[0]
            for r in self._read("SELECT id FROM objects WHERE status = ? ORDER BY rowid", (status,))
        ]

    def positions(self) -> Table:
        """Every object's ``id`` (str), ``ra`` and ``dec`` [deg], in the order they were
        added (pool and training alike), as an astropy Table; NaN where unknown.

        This is what fetching cutouts needs
        (:func:`clusterlens.loop.networks.project_positions`).
        """
        from astropy.table import Table

        rows = self._read("SELECT id, ra, dec FROM objects ORDER BY rowid")
        ids = np.array([r[0] for r in rows], dtype=str)
        ra = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
        dec = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=float)
        return Table({"id": ids, "ra": ra, "dec": dec})


def _jsonable(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v if isinstance(v, str | int | float | bool) or v is None else str(v)
