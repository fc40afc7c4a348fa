"""Graders' decisions on the objects opened for inspection, and where each grader stands.

A decision is one grader's call on one object of one iteration: lens or not, for a lens
optionally a grade A/B/C (Zhang et al. 2026, section 4.1) and points marked on the arcs
(arcsec from the BCG, their mean distance is the Einstein radius of the catalogue). A grader
deciding the same object of the same iteration again replaces the earlier decision, so a
retry never counts twice, and the replaced decision is kept so that :meth:`undo_decision`
restores it; names are compared in one canonical spelling, and a name that
differs from another grader's only by case or width is refused (one person, one vote).

:class:`DecisionsMixin` is the part of :class:`~clusterlens.loop.SearchProject` that keeps
them, each with an optional free-text comment and flags from ``DECISION_FLAGS``;
every write is one transaction of the store (:mod:`clusterlens.loop._store`), and a
CSV import is one transaction for the whole file (all rows or none).
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

import numpy as np

from clusterlens._provenance import unix_time
from clusterlens._validation import check_array, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.loop._store import ProjectStore, check_iteration, now
from clusterlens.loop.grading import check_grade

__all__: list[str] = []  # the mixin is documented as SearchProject; the constants with it

#: Flags a grader may set on a decision, besides the free-text comment.
DECISION_FLAGS = ("ambiguous", "artefact", "needs-deeper-data", "interesting-non-lens")
#: Most characters a decision's comment may have.
MAX_COMMENT_LENGTH = 500

_COLUMNS = "object_id, iteration, grader, is_lens, grade, arc_points, decided_at, comment, flags"


class DecisionsMixin(ProjectStore):
    """The decisions of a :class:`~clusterlens.loop.SearchProject` (a part of it)."""

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
        comment: str = "",
        flags=(),
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
        comment : str, optional
            Free text, at most ``MAX_COMMENT_LENGTH`` (500) characters.
        flags : sequence of str, optional
            Any of ``DECISION_FLAGS`` (``"ambiguous"``, ``"artefact"``,
            ``"needs-deeper-data"``, ``"interesting-non-lens"``).
        """
        row = self._decision_row(
            object_id, iteration, grader, is_lens, grade, arc_points, decided_at, comment, flags
        )
        self._transaction(lambda conn: self._insert_decisions(conn, [row]))

    @staticmethod
    def _decision_row(
        object_id, iteration, grader, is_lens, grade, arc_points, decided_at, comment="", flags=()
    ):
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
        iteration = check_iteration(iteration, owner)
        t = now() if decided_at is None else check_scalar(decided_at, "decided_at", owner)
        return (
            str(object_id),
            iteration,
            grader,
            int(bool(is_lens)),
            grade,
            points,
            t,
            _check_comment(comment, owner),
            _check_flags(flags, owner),
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
            old = conn.execute(
                f"SELECT {_COLUMNS} FROM decisions "
                "WHERE object_id = ? AND iteration = ? AND grader = ?",
                row[:3],
            ).fetchone()
            # the replaced decision is kept for an undo; a retry of the same call is not a
            # replacement (an undo after it must not bring back an identical copy)
            if old is not None and (old[3:6] + old[7:]) != (row[3:6] + row[7:]):
                conn.execute(
                    f"INSERT INTO replaced_decisions ({_COLUMNS}, replaced_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*old, now()),
                )
            conn.execute(
                f"INSERT INTO decisions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (object_id, iteration, grader) DO UPDATE SET "
                "is_lens = excluded.is_lens, grade = excluded.grade, "
                "arc_points = excluded.arc_points, decided_at = excluded.decided_at, "
                "comment = excluded.comment, flags = excluded.flags",
                row,
            )

    def delete_decision(self, object_id, iteration: int, grader: str) -> bool:
        """Remove one grader's decision on one object, and the decisions it replaced (so a
        later :meth:`undo_decision` cannot bring one back); one transaction.

        Returns ``True`` when a decision was removed, ``False`` when there was none (so
        repeating it is harmless). Objects already moved into training by :meth:`apply`
        stay there. To step back one decision, use :meth:`undo_decision`.
        """
        owner = "SearchProject.delete_decision"
        key = (str(object_id), check_iteration(iteration, owner), _check_grader(grader, owner))

        def work(conn):
            where = "WHERE object_id = ? AND iteration = ? AND grader = ?"
            conn.execute(f"DELETE FROM replaced_decisions {where}", key)
            return conn.execute(f"DELETE FROM decisions {where}", key).rowcount > 0

        return self._transaction(work)

    def undo_decision(self, object_id, iteration: int, grader: str) -> dict | None:
        """Undo one grader's latest decision on one object; one transaction.

        The decision it replaced (if the grader had decided this object before) is restored,
        comment and flags included; otherwise the object is left undecided by this grader.
        Repeating steps further back, one replaced decision at a time.

        Returns
        -------
        dict or None
            The restored decision (the keys of :meth:`decision_records`), or ``None`` when
            the object is now undecided by this grader (also when there was nothing to undo).
        """
        owner = "SearchProject.undo_decision"
        key = (str(object_id), check_iteration(iteration, owner), _check_grader(grader, owner))

        def work(conn):
            where = "WHERE object_id = ? AND iteration = ? AND grader = ?"
            conn.execute(f"DELETE FROM decisions {where}", key)
            prev = conn.execute(
                f"SELECT id, {_COLUMNS} FROM replaced_decisions {where} ORDER BY id DESC LIMIT 1",
                key,
            ).fetchone()
            if prev is None:
                return None
            conn.execute("DELETE FROM replaced_decisions WHERE id = ?", (prev[0],))
            conn.execute(
                f"INSERT INTO decisions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", prev[1:]
            )
            return prev[1:]

        row = self._transaction(work)
        return None if row is None else _record(row[:1] + row[2:])

    def set_grader_position(self, grader: str, iteration: int, object_id) -> None:
        """Remember that ``grader`` is looking at ``object_id`` in ``iteration``'s queue.

        The inspection app calls this at every page turn so that a reload, a closed tab or
        a restarted server puts the grader back where they were.
        """
        owner = "SearchProject.set_grader_position"
        grader = _check_grader(grader, owner)
        iteration = check_iteration(iteration, owner)

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
                (grader, iteration, str(object_id), now()),
            )

        self._transaction(work)

    def grader_position(self, grader: str, iteration: int) -> str | None:
        """The object ``grader`` last looked at in ``iteration`` (``None`` if never)."""
        owner = "SearchProject.grader_position"
        rows = self._read(
            "SELECT object_id FROM grader_positions WHERE grader = ? AND iteration = ?",
            (_check_grader(grader, owner), check_iteration(iteration, owner)),
        )
        return rows[0][0] if rows else None

    def import_decisions_csv(self, path) -> int:
        """Import decisions from a CSV file, all or nothing; returns the number of rows.

        Columns: ``object_id``, ``iteration``, ``grader``, ``is_lens`` (1/0, true/false,
        yes/no), optional ``grade`` (A/B/C, empty for non-lenses), ``arc_points`` (JSON
        ``[[x, y], ...]`` in arcsec, or empty), ``decided_at`` (an ISO 8601 date, UTC unless
        it names its zone, or Unix seconds), ``comment`` (free text) and ``flags`` (names
        from ``DECISION_FLAGS`` separated by ``,`` or ``;``). Every row is
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
                            unix_time(when) if when else None,
                            rec.get("comment") or "",
                            (rec.get("flags") or "").replace(";", ","),
                        )
                    )
                except (ValueError, TypeError) as exc:
                    raise ParameterError(f"{path}, line {line}: {exc}") from exc

        def work(conn):
            self._insert_decisions(conn, rows)
            return len(rows)

        return self._transaction(work)

    def decisions(self, iteration: int | None = None):
        """Decisions as an astropy Table (one row per object, iteration and grader).

        Columns: ``object_id``, ``iteration``, ``grader``, ``is_lens``, ``grade`` (empty if
        none), ``arc_points`` (JSON, empty if none), ``decided_at`` (Unix time),
        ``comment`` and ``flags`` (comma-separated names from ``DECISION_FLAGS``).
        """
        from astropy.table import Table

        sql = f"SELECT {_COLUMNS} FROM decisions"
        rows = self._read(
            sql + (" WHERE iteration = ?" if iteration is not None else "") + " ORDER BY id",
            (iteration,) if iteration is not None else (),
        )
        names = tuple(c.strip() for c in _COLUMNS.split(","))
        if not rows:
            return Table(names=names, dtype=(str, int, str, bool, str, str, float, str, str))
        cols = list(zip(*rows, strict=True))
        t = Table([list(c) for c in cols], names=names)
        t["is_lens"] = t["is_lens"].astype(bool)
        t["grade"] = [g or "" for g in cols[4]]
        t["arc_points"] = [p or "" for p in cols[5]]
        return t

    def decision_records(
        self, iteration: int, *, grader: str | None = None, object_id=None
    ) -> list[dict]:
        """Decisions of ``iteration`` as plain dicts, oldest first (cheaper than
        :meth:`decisions` for an app that asks often).

        Keys: ``object_id``, ``grader``, ``is_lens`` (bool), ``grade`` (``None`` if not
        graded), ``arc_points`` (list of ``[x, y]`` arcsec or ``None``) and ``decided_at``
        (Unix time), ``comment`` (``""`` if none) and ``flags`` (list of names from
        ``DECISION_FLAGS``). Optionally only one grader's or one object's.
        """
        owner = "SearchProject.decision_records"
        sql = (
            "SELECT object_id, grader, is_lens, grade, arc_points, decided_at, comment, flags "
            "FROM decisions WHERE iteration = ?"
        )
        params: list = [check_iteration(iteration, owner)]
        if grader is not None:
            sql += " AND grader = ?"
            params.append(_check_grader(grader, owner))
        if object_id is not None:
            sql += " AND object_id = ?"
            params.append(str(object_id))
        return [_record(row) for row in self._read(sql + " ORDER BY decided_at, id", params)]


def _record(row) -> dict:
    """A decision as :meth:`DecisionsMixin.decision_records` gives it, from the columns
    ``object_id, grader, is_lens, grade, arc_points, decided_at, comment, flags``."""
    oid, grader, lens, grade, pts, t, comment, flags = row
    return {
        "object_id": oid,
        "grader": grader,
        "is_lens": bool(lens),
        "grade": grade,
        "arc_points": json.loads(pts) if pts else None,
        "decided_at": t,
        "comment": comment,
        "flags": flags.split(",") if flags else [],
    }


def _check_comment(comment, owner: str) -> str:
    """A decision's comment: a string of at most MAX_COMMENT_LENGTH characters, stripped."""
    if comment is None:
        return ""
    if not isinstance(comment, str) or len(comment.strip()) > MAX_COMMENT_LENGTH:
        raise ParameterError(
            f"The 'comment' parameter of {owner} must be text of at most {MAX_COMMENT_LENGTH} "
            f"characters. Got {type(comment).__name__} of length {len(str(comment))}."
        )
    return comment.strip()


def _check_flags(flags, owner: str) -> str:
    """Flags as stored: known names, without repeats, in the order of DECISION_FLAGS,
    comma-separated. Accepts a sequence of names or one comma-separated string."""
    if flags is None:
        return ""
    if isinstance(flags, str):
        flags = [f for f in (part.strip() for part in flags.split(",")) if f]
    if not isinstance(flags, list | tuple | set | frozenset) or not all(
        isinstance(f, str) for f in flags
    ):
        raise ParameterError(
            f"The 'flags' parameter of {owner} must be a list of names. Got {flags!r}."
        )
    unknown = sorted(set(flags) - set(DECISION_FLAGS))
    if unknown:
        raise ParameterError(
            f"The 'flags' parameter of {owner} must name flags among {list(DECISION_FLAGS)}. "
            f"Got {unknown}."
        )
    return ",".join(f for f in DECISION_FLAGS if f in flags)


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
