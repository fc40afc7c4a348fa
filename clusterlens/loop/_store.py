"""The SQLite store under :class:`~clusterlens.loop.SearchProject` (private).

:class:`ProjectStore` owns the project file: it refuses files that are not projects, opens
one connection per thread (and per process, after a fork), runs every change as one
``BEGIN IMMEDIATE ... COMMIT`` transaction retried while another writer holds the lock,
applies the schema migrations of :mod:`clusterlens.loop._schema` on opening, and turns
SQLite's failures that belong to the file (read-only, corrupt, unreachable) into one-line
:class:`~clusterlens.errors.ClusterlensError` messages.

The database runs in write-ahead-log mode with full synchronisation, so a process killed at
any moment loses no committed change and leaves no change half-applied. The other parts of
the project (:mod:`~clusterlens.loop.iteration`, :mod:`~clusterlens.loop.decisions`,
:mod:`~clusterlens.loop.catalogue`) read with :meth:`ProjectStore._read` and write only
through :meth:`ProjectStore._transaction`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ClusterlensError
from clusterlens.loop._schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["ProjectStore"]

#: Attempts at ``BEGIN IMMEDIATE`` while another writer holds the lock (besides SQLite's own
#: busy timeout), with a back-off of 10 ms doubling up to 0.5 s.
_RETRIES = 50


def now() -> float:
    """The current Unix time [s], as stored in the project."""
    return time.time()


def check_iteration(iteration, owner: str) -> int:
    """An iteration number as a Python int, or a ParameterError naming ``owner``."""
    return check_int(iteration, "iteration", owner)


class ProjectStore:
    """The project's SQLite file: checks, connections, transactions and migrations.

    Takes the parameters of :class:`~clusterlens.loop.SearchProject` (``path``, ``timeout``),
    whose base it is; the file must exist (``SearchProject.create`` makes one).
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
