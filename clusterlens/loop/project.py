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
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sqlite3
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from clusterlens._validation import check_array, check_scalar
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop._schema import MIGRATIONS, SCHEMA_VERSION
from clusterlens.loop.grading import aggregate_grades, check_grade, grade_spread
from clusterlens.loop.grading import einstein_radius_from_points as _einstein_radius
from clusterlens.loop.selection import bald, select_above, select_bald, select_top_k

if TYPE_CHECKING:  # for annotations only
    from astropy.table import Table
    from matplotlib.figure import Figure

__all__ = ["Trainer", "Scorer", "SearchProject", "CATALOG_COLUMNS"]

#: Columns of the Zhang et al. (2026) candidate catalogue, written first by export_catalog.
CATALOG_COLUMNS = (
    "CLUSTER_ID",
    "RA_BCG",
    "DEC_BCG",
    "PZ_BCG",
    "R_500",
    "M_500",
    "SHAPE_R_BCG",
    "R_EIN",
    "GRADE",
)
_RETRIES = 50


@runtime_checkable
class Trainer(Protocol):
    """Trains (or fine-tunes) a lens finder; the real one is ``clusterlens.nets``' trainer."""

    def train(
        self, positives: Sequence[str], negatives: Sequence[str], previous_model: str | None
    ) -> str:
        """Train on the base training set plus the loop's additions; return the model path.

        ``positives``/``negatives`` are the object ids the search moved into training so
        far; ``previous_model`` is the last iteration's model (``None`` at the start).
        """


@runtime_checkable
class Scorer(Protocol):
    """Scores objects with a trained model."""

    def score(self, model_path: str, object_ids: Sequence[str]) -> np.ndarray:
        """Return lens scores, shape ``(n,)``, or sampled probabilities ``(n_samples, n)``.

        Samples (MC dropout or an ensemble) enable the ``"bald"`` strategy; the stored score
        is then their mean.
        """


def _now() -> float:
    return time.time()


class SearchProject:
    """A lens search kept in one SQLite database file.

    Create one with :meth:`create` (from a table of the objects to search), open an existing
    one with ``SearchProject(path)``. A project object may be shared by threads (each thread
    gets its own connection); other processes simply open the same path.

    Parameters
    ----------
    path : str or Path
        The project file (``.sqlite``); it must exist.
    timeout : float
        Seconds a writer waits for another writer before retrying (SQLite busy timeout).
    """

    def __init__(self, path, *, timeout: float = 30.0, _creating: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            raise ClusterlensError(
                f"No search project at {str(self.path)!r}; make one with SearchProject.create."
            )
        self.timeout = check_scalar(timeout, "timeout", "SearchProject", low=0)
        self._local = threading.local()
        if not _creating:
            self._check_is_project()
        self._migrate()

    def _check_is_project(self) -> None:
        """Refuse, before anything is written, a file that is not a clusterlens project: an
        empty file, a file that is not SQLite, a truncated or corrupt one, or another
        program's SQLite database (which migrating would turn into a project)."""
        where = str(self.path)
        # Only stat and SQLite touch the file: a plain open() and close() here would drop the
        # POSIX locks that this process's other connections hold on it, and another process
        # could then checkpoint and delete the WAL under them (a corrupt project).
        size = self.path.stat().st_size
        if size == 0:
            raise ClusterlensError(f"{where!r} is an empty file, not a search project.")
        not_sqlite = ClusterlensError(
            f"{where!r} is not a search project (not an SQLite database, or truncated)."
        )
        if size < 512:  # SQLite's smallest page
            raise not_sqlite
        # reads only (waiting for writers like every connection here), so a foreign file is
        # left as it was
        try:
            with self._sqlite_errors():
                con = sqlite3.connect(self.path, timeout=self.timeout)
                try:
                    version = con.execute("PRAGMA user_version").fetchone()[0]
                    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
                finally:
                    con.close()
        except ClusterlensError as exc:
            if "file is not a database" in str(exc):
                raise not_sqlite from None
            raise
        if version > SCHEMA_VERSION:
            return  # a newer clusterlens's project: _migrate says so
        if version < 1 or not {"meta", "objects", "iterations"} <= tables:
            raise ClusterlensError(
                f"{where!r} is an SQLite database but not a clusterlens search project "
                "(another program's file?); it was left unchanged."
            )

    # -- connections and transactions ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _transaction(self, work):
        """Run ``work(conn)`` inside ``BEGIN IMMEDIATE ... COMMIT``; retry while locked."""
        with self._sqlite_errors():
            conn = self._conn()
            for attempt in range(_RETRIES):
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        time.sleep(min(0.5, 0.01 * 2**attempt))
                        continue
                    raise
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        raise ClusterlensError(f"The project {str(self.path)!r} stayed locked; try again.")

    def _read(self, sql, params=()):
        with self._sqlite_errors():
            return self._conn().execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _sqlite_errors(self):
        """SQLite's failures that are the file's, not the code's, as one-line errors."""
        where = str(self.path)
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "readonly" in text or "read-only" in text:
                raise ClusterlensError(
                    f"The project file {where!r} (or its folder) is read-only: nothing was written."
                ) from None
            if "unable to open" in text or "disk I/O" in text:
                raise ClusterlensError(
                    f"The project file {where!r} cannot be used: {text}."
                ) from None
            raise
        except sqlite3.DatabaseError as exc:
            if type(exc) is sqlite3.DatabaseError:  # malformed image, not a database
                raise ClusterlensError(f"The project file {where!r} is corrupt: {exc}.") from None
            raise

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _migrate(self) -> None:
        def work(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ClusterlensError(
                    f"The project {str(self.path)!r} has schema version {version}, newer than "
                    f"this clusterlens understands ({SCHEMA_VERSION}); upgrade clusterlens."
                )
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={v}")
            return version

        self._transaction(work)

    @property
    def schema_version(self) -> int:
        """The database's schema version (``PRAGMA user_version``)."""
        return self._read("PRAGMA user_version")[0][0]

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
            lambda conn: conn.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(_now()),))
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
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must be a positive integer. "
                    f"Got {value!r} instead."
                )
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

    # -- iterations -----------------------------------------------------------------------

    def iterations(self) -> list[dict]:
        """All iterations as dicts (number, state, model_path, threshold, ...), in order."""
        cur = self._conn().execute("SELECT * FROM iterations ORDER BY number")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def open_iteration(self) -> int | None:
        """The number of the iteration awaiting :meth:`apply`, or ``None``."""
        rows = self._read("SELECT number FROM iterations WHERE state = 'open'")
        return rows[0][0] if rows else None

    def iterate(
        self,
        trainer: Trainer,
        scorer: Scorer,
        *,
        k: int | None = 4000,
        threshold: float | None = None,
        strategy: str = "top_k",
        test_set: tuple[Sequence[str], Sequence[int]] | None = None,
        mix: float = 0.0,
    ) -> int:
        """Train, score the pool, select objects for inspection; returns the iteration number.

        The trainer gets the loop's positives and negatives and the previous model; the
        scorer scores every object still in the pool. Nothing is recorded until scoring is
        done; then the iteration, its scores and its selection are written in one
        transaction (a kill while training or scoring leaves the project as it was).

        Parameters
        ----------
        trainer, scorer : Trainer, Scorer
            See the protocols in this module.
        k : int or None
            How many objects to open for inspection (4,000 in the paper).
        threshold : float, optional
            Select every object with ``score >= threshold`` instead of the top ``k``.
        strategy : {"top_k", "bald"}
            ``"bald"`` selects the ``k`` objects with the largest BALD mutual information;
            the scorer must then return probability samples ``(n_samples, n)``.
        mix : float in [0, 1]
            With ``"bald"``: the fraction of ``k`` taken by highest mean score first, the
            rest by BALD (:func:`~clusterlens.loop.selection.select_bald`); 0 is pure BALD.
        test_set : (ids, labels), optional
            A labelled test set (e.g. known lenses and non-lenses); the iteration's purity
            and completeness on it, at the selection threshold, go into Table 2.
        """
        if not isinstance(trainer, Trainer):
            raise ParameterError(
                "The 'trainer' parameter of SearchProject.iterate must have a "
                f"train(positives, negatives, previous_model) method. Got {trainer!r}."
            )
        if not isinstance(scorer, Scorer):
            raise ParameterError(
                "The 'scorer' parameter of SearchProject.iterate must have a "
                f"score(model_path, object_ids) method. Got {scorer!r}."
            )
        if self.open_iteration() is not None:
            raise ClusterlensError(
                f"Iteration {self.open_iteration()} is still open; apply() it before iterating."
            )
        previous = self._read("SELECT model_path FROM iterations ORDER BY number DESC LIMIT 1")
        model = trainer.train(
            self.ids("positive"), self.ids("negative"), previous[0][0] if previous else None
        )
        pool = self.ids("pool")
        if not pool:
            raise ClusterlensError("The pool is empty: every object has been moved to training.")
        raw = np.asarray(scorer.score(str(model), pool), dtype=np.float64)
        return self.record_iteration(
            str(model),
            pool,
            raw,
            k=k,
            threshold=threshold,
            strategy=strategy,
            test_set=test_set,
            scorer=scorer,
            mix=mix,
        )

    def record_iteration(
        self,
        model_path: str | None,
        object_ids: Sequence[str],
        scores,
        *,
        k: int | None = 4000,
        threshold: float | None = None,
        strategy: str = "top_k",
        test_set=None,
        scorer: Scorer | None = None,
        mix: float = 0.0,
    ) -> int:
        """Record an iteration from scores computed elsewhere (e.g. ``clusterlens score``).

        ``scores`` has shape ``(n,)`` or ``(n_samples, n)`` for ``object_ids``, which must all
        be in the pool. Other parameters as :meth:`iterate` (``test_set`` needs ``scorer``).
        """
        owner = "SearchProject.record_iteration"
        ids = [str(i) for i in object_ids]
        raw = check_array(scores, "scores", owner)
        if raw.ndim not in (1, 2) or raw.shape[-1] != len(ids):
            raise ParameterError(
                f"The 'scores' parameter of {owner} must have shape (n,) or (n_samples, n) with "
                f"n = {len(ids)} objects. Got {raw.shape}."
            )
        if strategy not in ("top_k", "bald"):
            raise ParameterError(
                f"The 'strategy' parameter of {owner} must be 'top_k' or 'bald'. Got {strategy!r}."
            )
        score = raw.mean(axis=0) if raw.ndim == 2 else raw
        uncertainty = None
        if raw.ndim == 2:
            uncertainty = bald(raw) if raw.min() >= 0 and raw.max() <= 1 else raw.std(axis=0)
        if strategy == "bald":
            if raw.ndim != 2 or k is None:
                raise ParameterError(
                    f"{owner}: strategy 'bald' needs k and score samples of shape (n_samples, n)."
                )
            chosen = select_bald(raw, k, mix=mix)
        elif threshold is not None:
            chosen = select_above(score, threshold)
        elif k is not None:
            chosen = select_top_k(score, k)
        else:
            raise ParameterError(f"{owner}: give k or threshold.")
        thr = (
            float(threshold)
            if threshold is not None
            else (float(score[chosen].min()) if chosen.size else math.inf)
        )
        purity = completeness = None
        if test_set is not None:
            from clusterlens.metrics import purity_completeness

            if scorer is None:
                raise ParameterError(f"{owner}: test_set needs a scorer.")
            t_ids, t_labels = test_set
            t_raw = np.asarray(scorer.score(str(model_path), [str(i) for i in t_ids]), float)
            t_score = t_raw.mean(axis=0) if t_raw.ndim == 2 else t_raw
            purity, completeness = purity_completeness(t_labels, t_score, thr)
            purity = None if math.isnan(purity) else purity

        def work(conn):
            if conn.execute("SELECT 1 FROM iterations WHERE state = 'open'").fetchone():
                raise ClusterlensError("An iteration is still open; apply() it first.")
            in_pool = {r[0] for r in conn.execute("SELECT id FROM objects WHERE status='pool'")}
            missing = [i for i in ids if i not in in_pool]
            if missing:
                raise ParameterError(
                    f"{owner}: {len(missing)} object(s) are not in the pool, e.g. {missing[:3]}."
                )
            number = conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM iterations").fetchone()[
                0
            ]
            conn.execute(
                "INSERT INTO iterations (number, state, model_path, strategy, k, threshold, "
                "n_scored, n_selected, purity, completeness, created_at) "
                "VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    number,
                    model_path,
                    strategy,
                    k,
                    thr,
                    len(ids),
                    int(chosen.size),
                    purity,
                    completeness,
                    _now(),
                ),
            )
            unc = uncertainty if uncertainty is not None else [None] * len(ids)
            conn.executemany(
                "INSERT INTO scores VALUES (?, ?, ?, ?)",
                (
                    (number, i, float(s), None if u is None else float(u))
                    for i, s, u in zip(ids, score, unc, strict=True)
                ),
            )
            conn.executemany(
                "INSERT INTO selections VALUES (?, ?, ?)",
                ((number, ids[j], r) for r, j in enumerate(chosen)),
            )
            return number

        return self._transaction(work)

    def selected(self, iteration: int | None = None) -> list[str]:
        """Ids opened for inspection in ``iteration`` (default: the open one), by rank."""
        if iteration is None:
            iteration = self.open_iteration()
            if iteration is None:
                return []
        return [
            r[0]
            for r in self._read(
                "SELECT object_id FROM selections WHERE iteration = ? ORDER BY rank", (iteration,)
            )
        ]

    def inspection_queue(self, iteration: int) -> list[dict]:
        """The objects selected in ``iteration``, by rank, with the facts graders see.

        Each item is a dict with ``id``, ``rank`` (0 = highest priority), ``ra``, ``dec``
        [deg], ``z``, ``m500`` [Msun] and ``score`` (``None`` where unknown).
        """
        iteration = _check_iteration(iteration, "SearchProject.inspection_queue")
        rows = self._read(
            "SELECT s.object_id, s.rank, o.ra, o.dec, o.z, o.m500, sc.score FROM selections s "
            "JOIN objects o ON o.id = s.object_id LEFT JOIN scores sc "
            "ON sc.iteration = s.iteration AND sc.object_id = s.object_id "
            "WHERE s.iteration = ? ORDER BY s.rank",
            (iteration,),
        )
        names = ("id", "rank", "ra", "dec", "z", "m500", "score")
        return [dict(zip(names, r, strict=True)) for r in rows]

    def decision_records(
        self, iteration: int, *, grader: str | None = None, object_id=None
    ) -> list[dict]:
        """Decisions of ``iteration`` as plain dicts, oldest first (cheaper than
        :meth:`decisions` for an app that asks often).

        Keys: ``object_id``, ``grader``, ``is_lens`` (bool), ``grade`` (``None`` if not
        graded), ``arc_points`` (list of ``[x, y]`` arcsec or ``None``) and ``decided_at``
        (Unix time). Optionally only one grader's or one object's.
        """
        owner = "SearchProject.decision_records"
        sql = (
            "SELECT object_id, grader, is_lens, grade, arc_points, decided_at FROM decisions "
            "WHERE iteration = ?"
        )
        params: list = [_check_iteration(iteration, owner)]
        if grader is not None:
            sql += " AND grader = ?"
            params.append(_check_grader(grader, owner))
        if object_id is not None:
            sql += " AND object_id = ?"
            params.append(str(object_id))
        return [
            {
                "object_id": oid,
                "grader": g,
                "is_lens": bool(lens),
                "grade": grade,
                "arc_points": json.loads(pts) if pts else None,
                "decided_at": t,
            }
            for oid, g, lens, grade, pts, t in self._read(sql + " ORDER BY decided_at, id", params)
        ]

    def scores(self, iteration: int) -> dict[str, float]:
        """The scores of ``iteration`` as ``{object id: score}``."""
        return dict(
            self._read("SELECT object_id, score FROM scores WHERE iteration = ?", (iteration,))
        )

    # -- decisions ------------------------------------------------------------------------

    def record_decision(
        self,
        object_id,
        iteration: int,
        grader: str,
        *,
        is_lens: bool,
        grade: str | None = None,
        arc_points=None,
        decided_at: float | None = None,
    ) -> None:
        """Save one grader's decision on one object (one transaction).

        A grader deciding the same object of the same iteration again replaces the earlier
        decision (so retries never duplicate). Decisions may be added after :meth:`apply`
        (e.g. the final A/B/C grading by all graders); they change grades, not what was
        moved into training.

        Parameters
        ----------
        object_id : str
            An object selected for inspection in ``iteration``.
        iteration : int
            Iteration number.
        grader : str
            The grader's name.
        is_lens : bool
            The grader's lens / non-lens call.
        grade : {"A", "B", "C"}, optional
            Only for lenses (section 4.1 of the paper).
        arc_points : array_like, shape (n, 2), optional
            ``(x, y)`` arcsec from the BCG of points marked on the arcs; their mean distance
            is the Einstein radius in the catalogue.
        decided_at : float, optional
            Unix time of the decision; now by default.
        """
        row = self._decision_row(
            object_id, iteration, grader, is_lens, grade, arc_points, decided_at
        )
        self._transaction(lambda conn: self._insert_decisions(conn, [row]))

    @staticmethod
    def _decision_row(object_id, iteration, grader, is_lens, grade, arc_points, decided_at):
        owner = "SearchProject.record_decision"
        grader = _check_grader(grader, owner)
        if isinstance(is_lens, str):
            low = is_lens.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "lens", "non-lens"):
                raise ParameterError(
                    f"The 'is_lens' parameter of {owner} must be a bool. Got {is_lens!r}."
                )
            is_lens = low in ("1", "true", "yes", "lens")
        if not isinstance(is_lens, bool | np.bool_ | int | np.integer) or is_lens not in (0, 1):
            raise ParameterError(
                f"The 'is_lens' parameter of {owner} must be a bool. Got {is_lens!r}."
            )
        if grade is not None and not (isinstance(grade, str) and grade.strip() == ""):
            grade = check_grade(grade, owner)
            if not is_lens:
                raise ParameterError(f"{owner}: a grade ({grade}) was given for a non-lens.")
        else:
            grade = None
        points = None
        if arc_points is not None and len(arc_points):
            p = check_array(arc_points, "arc_points", owner, ndim=2)
            if p.shape[1] != 2:
                raise ParameterError(
                    f"The 'arc_points' parameter of {owner} must have shape (n, 2). Got {p.shape}."
                )
            points = json.dumps(p.tolist())
        iteration = _check_iteration(iteration, owner)
        t = _now() if decided_at is None else check_scalar(decided_at, "decided_at", owner)
        return (
            str(object_id),
            iteration,
            grader,
            int(bool(is_lens)),
            grade,
            points,
            t,
        )

    @staticmethod
    def _insert_decisions(conn, rows):
        for row in rows:
            _refuse_near_duplicate(conn, row[2])
            if not conn.execute(
                "SELECT 1 FROM selections WHERE iteration = ? AND object_id = ?", (row[1], row[0])
            ).fetchone():
                raise ParameterError(
                    f"Object {row[0]!r} was not selected for inspection in iteration {row[1]}."
                )
            conn.execute(
                "INSERT INTO decisions (object_id, iteration, grader, is_lens, grade, "
                "arc_points, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (object_id, iteration, grader) DO UPDATE SET "
                "is_lens = excluded.is_lens, grade = excluded.grade, "
                "arc_points = excluded.arc_points, decided_at = excluded.decided_at",
                row,
            )

    def delete_decision(self, object_id, iteration: int, grader: str) -> bool:
        """Remove one grader's decision on one object (an undo); one transaction.

        Returns ``True`` when a decision was removed, ``False`` when there was none (so
        repeating an undo is harmless). Objects already moved into training by
        :meth:`apply` stay there.
        """
        owner = "SearchProject.delete_decision"
        grader = _check_grader(grader, owner)
        iteration = _check_iteration(iteration, owner)

        def work(conn):
            cur = conn.execute(
                "DELETE FROM decisions WHERE object_id = ? AND iteration = ? AND grader = ?",
                (str(object_id), iteration, grader),
            )
            return cur.rowcount > 0

        return self._transaction(work)

    def set_grader_position(self, grader: str, iteration: int, object_id) -> None:
        """Remember that ``grader`` is looking at ``object_id`` in ``iteration``'s queue.

        The inspection app calls this at every page turn so that a reload, a closed tab or
        a restarted server puts the grader back where they were.
        """
        owner = "SearchProject.set_grader_position"
        grader = _check_grader(grader, owner)
        iteration = _check_iteration(iteration, owner)

        def work(conn):
            _refuse_near_duplicate(conn, grader)
            if not conn.execute(
                "SELECT 1 FROM selections WHERE iteration = ? AND object_id = ?",
                (iteration, str(object_id)),
            ).fetchone():
                raise ParameterError(
                    f"Object {str(object_id)!r} was not selected for inspection in iteration "
                    f"{iteration}."
                )
            conn.execute(
                "INSERT INTO grader_positions VALUES (?, ?, ?, ?) ON CONFLICT (grader, iteration) "
                "DO UPDATE SET object_id = excluded.object_id, updated_at = excluded.updated_at",
                (grader, iteration, str(object_id), _now()),
            )

        self._transaction(work)

    def grader_position(self, grader: str, iteration: int) -> str | None:
        """The object ``grader`` last looked at in ``iteration`` (``None`` if never)."""
        owner = "SearchProject.grader_position"
        rows = self._read(
            "SELECT object_id FROM grader_positions WHERE grader = ? AND iteration = ?",
            (_check_grader(grader, owner), _check_iteration(iteration, owner)),
        )
        return rows[0][0] if rows else None

    def import_decisions_csv(self, path) -> int:
        """Import decisions from a CSV file, all or nothing; returns the number of rows.

        Columns: ``object_id``, ``iteration``, ``grader``, ``is_lens`` (1/0, true/false,
        yes/no), optional ``grade`` (A/B/C, empty for non-lenses), ``arc_points`` (JSON
        ``[[x, y], ...]`` in arcsec, or empty) and ``decided_at`` (Unix time). Every row is
        checked before anything is written; an error names the line.
        """
        rows = []
        raw = Path(path).read_bytes()
        try:
            text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is accepted
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ParameterError(
                f"The CSV {str(path)!r} is not UTF-8 (byte {raw[exc.start]:#04x} on line "
                f"{line}); save it as UTF-8 and import again."
            ) from None
        with io.StringIO(text, newline="") as fh:
            reader = csv.DictReader(fh)
            need = {"object_id", "iteration", "grader", "is_lens"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise ParameterError(
                    f"The CSV {str(path)!r} needs columns {sorted(need)}; got {reader.fieldnames}."
                )
            for line, rec in enumerate(reader, start=2):
                try:
                    pts = rec.get("arc_points") or None
                    when = rec.get("decided_at") or None
                    rows.append(
                        self._decision_row(
                            rec["object_id"],
                            int(rec["iteration"]),
                            rec["grader"],
                            rec["is_lens"],
                            rec.get("grade") or None,
                            json.loads(pts) if pts else None,
                            float(when) if when else None,
                        )
                    )
                except (ValueError, TypeError) as exc:
                    raise ParameterError(f"{path}, line {line}: {exc}") from exc

        def work(conn):
            self._insert_decisions(conn, rows)
            return len(rows)

        return self._transaction(work)

    def decisions(self, iteration: int | None = None):
        """Decisions as an astropy Table (one row per object, iteration and grader)."""
        from astropy.table import Table

        sql = (
            "SELECT object_id, iteration, grader, is_lens, grade, arc_points, decided_at "
            "FROM decisions"
        )
        rows = self._read(
            sql + (" WHERE iteration = ?" if iteration is not None else "") + " ORDER BY id",
            (iteration,) if iteration is not None else (),
        )
        names = ("object_id", "iteration", "grader", "is_lens", "grade", "arc_points", "decided_at")
        if not rows:
            return Table(names=names, dtype=(str, int, str, bool, str, str, float))
        cols = list(zip(*rows, strict=True))
        t = Table([list(c) for c in cols], names=names)
        t["is_lens"] = t["is_lens"].astype(bool)
        t["grade"] = [g or "" for g in cols[4]]
        t["arc_points"] = [p or "" for p in cols[5]]
        return t

    # -- applying an iteration ------------------------------------------------------------

    def apply(self, *, add_negatives: bool = False, allow_undecided: bool = False) -> dict:
        """Close the open iteration: move confirmed lenses from the pool into training.

        An object is a confirmed lens when more of its graders called it a lens than not
        (a tie is not a confirmation). Confirmed lenses leave the pool and become training
        positives. With ``add_negatives=True`` the objects confirmed as non-lenses also leave
        the pool and become training negatives; the paper did not do this, but these are the
        most lens-like non-lenses in the survey, exactly the hard negatives (spiral arms,
        ring galaxies, cluster members aligned like arcs) a network needs to stop ranking
        first, and re-inspecting them every iteration wastes graders' time (Euclid Q1 found
        the same when it fed volunteers' rejections back into training, Walmsley et al.
        2025).

        Everything happens in one transaction. Returns the iteration's Table 2 row (see
        :meth:`table`).

        Parameters
        ----------
        add_negatives : bool
            Also move confirmed non-lenses into training negatives.
        allow_undecided : bool
            Apply although some selected objects have no decision (they stay in the pool).
        """
        number = self.open_iteration()
        if number is None:
            raise ClusterlensError("No iteration is open; run iterate() first.")

        def work(conn):
            state = conn.execute(
                "SELECT state FROM iterations WHERE number = ?", (number,)
            ).fetchone()[0]
            if state != "open":
                raise ClusterlensError(f"Iteration {number} was applied meanwhile.")
            selected = [
                r[0]
                for r in conn.execute(
                    "SELECT object_id FROM selections WHERE iteration = ?", (number,)
                )
            ]
            votes = defaultdict(lambda: [0, 0])
            for oid, is_lens in conn.execute(
                "SELECT object_id, is_lens FROM decisions WHERE iteration = ?", (number,)
            ):
                votes[oid][is_lens] += 1
            undecided = [o for o in selected if o not in votes]
            if undecided and not allow_undecided:
                raise ClusterlensError(
                    f"{len(undecided)} of the {len(selected)} objects selected in iteration "
                    f"{number} have no decision yet (e.g. {undecided[:3]}); grade them or pass "
                    "allow_undecided=True."
                )
            lenses = [o for o, (no, yes) in votes.items() if yes > no]
            non_lenses = [o for o, (no, yes) in votes.items() if yes <= no]
            conn.executemany(
                "UPDATE objects SET status = 'positive', added_iteration = ? "
                "WHERE id = ? AND status = 'pool'",
                ((number, o) for o in lenses),
            )
            if add_negatives:
                conn.executemany(
                    "UPDATE objects SET status = 'negative', added_iteration = ? "
                    "WHERE id = ? AND status = 'pool'",
                    ((number, o) for o in non_lenses),
                )
            lowest = conn.execute(
                "SELECT MIN(s.score) FROM scores s JOIN objects o ON o.id = s.object_id "
                "WHERE s.iteration = ? AND o.added_iteration = ? AND o.status = 'positive'",
                (number, number),
            ).fetchone()[0]
            conn.execute(
                "UPDATE iterations SET state = 'applied', applied_at = ?, lowest_new_score = ?, "
                "n_new = ?, n_new_negatives = ? WHERE number = ?",
                (_now(), lowest, len(lenses), len(non_lenses) if add_negatives else 0, number),
            )

        self._transaction(work)
        table = self.table()
        row = table[list(table["iteration"]).index(number)]
        return {name: row[name].item() for name in table.colnames}

    # -- results --------------------------------------------------------------------------

    def final_grades(self) -> dict[str, dict]:
        """Per found lens: the aggregated grade, per-grader grades, spread and Einstein radius.

        Returns ``{object id: {"grade", "graders" ({name: grade}), "mean", "std", "r_ein"}}``
        over the training positives; ``grade`` is ``""`` for lenses nobody graded yet. When a
        grader graded an object in several iterations the latest decision counts.
        """
        out = {}
        found = self.ids("positive")
        per = defaultdict(dict)
        points = defaultdict(list)
        for oid, grader, grade, pts in self._read(
            "SELECT object_id, grader, grade, arc_points FROM decisions "
            "WHERE is_lens = 1 ORDER BY decided_at, id"
        ):
            if grade:
                per[oid][grader] = grade
            if pts:
                points[oid].extend(json.loads(pts))
        for oid in found:
            g = per.get(oid, {})
            mean, std = grade_spread(list(g.values())) if g else (math.nan, math.nan)
            out[oid] = {
                "grade": aggregate_grades(g.values()) if g else "",
                "graders": dict(sorted(g.items())),
                "mean": mean,
                "std": std,
                "r_ein": _einstein_radius(points[oid]) if points[oid] else math.nan,
            }
        return out

    def table(self) -> Table:
        """The paper's Table 2 as an astropy Table, one row per applied iteration.

        Columns: ``iteration``, ``threshold`` (selection threshold: the lowest selected
        score for top-K), ``threshold_tp`` (lowest score among the iteration's new lenses),
        ``n_selected``, ``new``, ``cumulative``, ``cum_A``, ``cum_B``, ``cum_C`` (cumulative
        lenses by their current aggregated grade; ungraded lenses count in ``cumulative``
        only), ``purity`` and ``completeness`` (fractions, on the test set; NaN without one).
        """
        from astropy.table import Table

        grades = self.final_grades()
        found_in = defaultdict(list)
        for oid, it in self._read(
            "SELECT id, added_iteration FROM objects WHERE status = 'positive'"
        ):
            found_in[it].append(oid)
        rows, cum = [], {"all": 0, "A": 0, "B": 0, "C": 0}
        for it in self.iterations():
            if it["state"] != "applied":
                continue
            new = found_in.get(it["number"], [])
            cum["all"] += len(new)
            for oid in new:
                if grades[oid]["grade"]:
                    cum[grades[oid]["grade"]] += 1
            rows.append(
                {
                    "iteration": it["number"],
                    "threshold": it["threshold"],
                    "threshold_tp": math.nan
                    if it["lowest_new_score"] is None
                    else it["lowest_new_score"],
                    "n_selected": it["n_selected"],
                    "new": len(new),
                    "cumulative": cum["all"],
                    "cum_A": cum["A"],
                    "cum_B": cum["B"],
                    "cum_C": cum["C"],
                    "purity": math.nan if it["purity"] is None else it["purity"],
                    "completeness": math.nan if it["completeness"] is None else it["completeness"],
                }
            )
        names = (
            "iteration",
            "threshold",
            "threshold_tp",
            "n_selected",
            "new",
            "cumulative",
            "cum_A",
            "cum_B",
            "cum_C",
            "purity",
            "completeness",
        )
        if not rows:
            return Table(
                names=names, dtype=(int, float, float, int, int, int, int, int, int, float, float)
            )
        return Table(rows=[[r[n] for n in names] for r in rows], names=names)

    def should_stop(self, *, min_new: int = 20, patience: int = 2) -> bool:
        """Stopping rule: the last ``patience`` applied iterations each found < ``min_new``.

        The paper stopped after nine iterations when grade-A discoveries no longer grew and
        new candidates fell from about 100 to 15 per 4,000 inspected.
        """
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ParameterError(
                f"The 'patience' parameter of should_stop must be an integer "
                f">= 1. Got {patience!r}."
            )
        t = self.table()
        if len(t) < patience:
            return False
        return bool(np.all(np.asarray(t["new"][-patience:]) < min_new))

    def plot_progress(self, *, test_label: str = "test set") -> Figure:
        """A figure like the paper's Figure 6: cumulative candidates (all and by grade),
        purity and completeness against iteration. Returns the matplotlib Figure.

        ``test_label`` names what purity and completeness were measured on (the
        ``test_set`` given to :meth:`iterate`), e.g. ``"whole survey"``.
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        t = self.table()
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        it = np.asarray(t["iteration"])
        axes[0].plot(it, t["cumulative"], "o-", color="k", label="all")
        for g, c in zip("ABC", ("tab:red", "tab:orange", "tab:blue"), strict=True):
            axes[0].plot(it, t[f"cum_{g}"], "o-", color=c, label=f"grade {g}")
        axes[0].set(xlabel="Iteration", ylabel="Cumulative candidates")
        axes[0].legend(fontsize="small")
        axes[1].plot(it, 100 * np.asarray(t["purity"], float), "o-")
        axes[1].set(xlabel="Iteration", ylabel=f"Purity on {test_label} (%)")
        axes[2].plot(it, 100 * np.asarray(t["completeness"], float), "o-")
        axes[2].set(xlabel="Iteration", ylabel=f"Completeness on {test_label} (%)")
        for ax in axes:
            # whole iterations only; half a step of margin so that one iteration, or NaN
            # purity (no test set), still gets an integer tick rather than 0.95...1.05
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            if it.size:
                ax.set_xlim(it.min() - 0.5, it.max() + 0.5)
        fig.tight_layout()
        return fig

    def export_catalog(self, path, *, format: str | None = None, overwrite: bool = False) -> Table:
        """Write the candidate catalogue (all found lenses) as FITS or CSV; returns the Table.

        Columns: those of the Zhang et al. (2026) catalogue, ``CLUSTER_ID``, ``RA_BCG``,
        ``DEC_BCG`` (deg), ``PZ_BCG``, ``R_500`` (Mpc, from an object column ``r500``),
        ``M_500`` (log10 Msun, from ``m500`` in Msun), ``SHAPE_R_BCG`` (arcsec, from
        ``shape_r``), ``R_EIN`` (arcsec: mean distance of all marked arc points from the
        BCG), ``GRADE`` (aggregated); then ``SCORE`` (score in the iteration it was found),
        ``ITERATION``, ``N_GRADERS``, ``GRADE_MEAN``, ``GRADE_STD`` (A=3, B=2, C=1) and one
        ``GRADE_<grader>`` column per grader (empty when that grader did not grade it).
        Missing quantities are NaN. Written to a temporary name and renamed.
        """
        from astropy.table import Table

        path = Path(path)
        fmt = format or ("csv" if path.suffix.lower() == ".csv" else "fits")
        if fmt not in ("csv", "fits"):
            raise ParameterError(
                f"The 'format' parameter of export_catalog must be 'csv' or 'fits'. Got {format!r}."
            )
        if path.exists() and not overwrite:
            raise ClusterlensError(f"{str(path)!r} exists; pass overwrite=True to replace it.")
        grades = self.final_grades()
        graders = sorted({g for v in grades.values() for g in v["graders"]})
        rows = self._read(
            "SELECT o.id, o.ra, o.dec, o.z, o.m500, o.extra, o.added_iteration, s.score "
            "FROM objects o LEFT JOIN scores s ON s.object_id = o.id "
            "AND s.iteration = o.added_iteration WHERE o.status = 'positive' ORDER BY o.rowid"
        )
        ids = [r[0] for r in rows]
        numeric_ids = all(i.lstrip("-").isdigit() for i in ids) and ids

        def num(v):
            return math.nan if v is None else float(v)

        def extra(r, key):
            e = {k.lower(): v for k, v in json.loads(r[5]).items()}
            return num(e.get(key))

        cols = {
            "CLUSTER_ID": [int(i) for i in ids] if numeric_ids else ids,
            "RA_BCG": [num(r[1]) for r in rows],
            "DEC_BCG": [num(r[2]) for r in rows],
            "PZ_BCG": [num(r[3]) for r in rows],
            "R_500": [extra(r, "r500") for r in rows],
            "M_500": [math.log10(r[4]) if r[4] else math.nan for r in rows],
            "SHAPE_R_BCG": [extra(r, "shape_r") for r in rows],
            "R_EIN": [grades[i]["r_ein"] for i in ids],
            "GRADE": [grades[i]["grade"] for i in ids],
            "SCORE": [num(r[7]) for r in rows],
            "ITERATION": [int(r[6]) for r in rows],
            "N_GRADERS": [len(grades[i]["graders"]) for i in ids],
            "GRADE_MEAN": [grades[i]["mean"] for i in ids],
            "GRADE_STD": [grades[i]["std"] for i in ids],
        }
        for g in graders:
            cols[f"GRADE_{g}"] = [grades[i]["graders"].get(g, "") for i in ids]
        table = Table(cols, names=list(cols)) if ids else Table(names=list(cols))
        from clusterlens._provenance import provenance, table_for_fits

        for name, unit in _EXPORT_UNITS.items():
            table[name].unit = unit
        table.meta.update(provenance())
        tmp = path.with_name(path.name + ".tmp")
        out = table if fmt == "csv" else table_for_fits(table)  # CSV keeps neither
        out.write(tmp, format="ascii.csv" if fmt == "csv" else "fits", overwrite=True)
        os.replace(tmp, path)
        return table


#: Units (FITS TUNIT) of the physical columns of :meth:`SearchProject.export_catalog`.
_EXPORT_UNITS = {
    "RA_BCG": "deg",
    "DEC_BCG": "deg",
    "R_500": "Mpc",
    "SHAPE_R_BCG": "arcsec",
    "R_EIN": "arcsec",
}


def _check_grader(grader, owner: str) -> str:
    """The grader's name in one canonical spelling: NFKC-normalised (fullwidth 'Ａｎｎ' is
    'Ann'), inner runs of white space collapsed, stripped."""
    if not isinstance(grader, str) or not grader.strip():
        raise ParameterError(
            f"The 'grader' parameter of {owner} must be a non-empty name. Got {grader!r}."
        )
    return " ".join(unicodedata.normalize("NFKC", grader).split())


def _refuse_near_duplicate(conn, grader: str) -> None:
    """Refuse a name that differs from a grader already in the project only by case or
    width ('ann' beside 'Ann'): the same person must not cast two votes."""
    key = grader.casefold()
    for (other,) in conn.execute(
        "SELECT DISTINCT grader FROM decisions UNION SELECT DISTINCT grader FROM grader_positions"
    ):
        if other != grader and other.casefold() == key:
            raise ParameterError(
                f"The grader name {grader!r} differs from the project's grader {other!r} only "
                f"in case or width; grade as {other!r} (or choose a clearly different name)."
            )


def _check_iteration(iteration, owner: str) -> int:
    if isinstance(iteration, bool) or not isinstance(iteration, int | np.integer):
        raise ParameterError(
            f"The 'iteration' parameter of {owner} must be an integer. Got {iteration!r}."
        )
    return int(iteration)


def _jsonable(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v if isinstance(v, str | int | float | bool) or v is None else str(v)
