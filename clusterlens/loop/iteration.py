"""One iteration of the search: train, score the pool, select, and later apply.

The loop of Zhang et al. (2026, section 3.3): a :class:`Trainer` trains on the base training
set plus what the search moved into training so far, a :class:`Scorer` scores every object
still in the pool, a selection strategy (:mod:`clusterlens.loop.selection`) opens some for
inspection, and :meth:`IterationMixin.apply` moves the confirmed lenses into training.

:class:`IterationMixin` is the part of :class:`~clusterlens.loop.SearchProject` that does
this; it writes through the store's transactions (:mod:`clusterlens.loop._store`) and uses
``ids`` (the project's objects) and ``table`` (:mod:`clusterlens.loop.catalogue`) of the
other parts.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from clusterlens._validation import check_array
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop._store import ProjectStore, check_iteration, now
from clusterlens.loop.selection import Above, Bald, SelectionStrategy, TopK, bald

__all__ = ["Trainer", "Scorer"]  # the mixin is documented as SearchProject


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

        Samples (MC dropout or an ensemble) enable the :class:`~clusterlens.loop.Bald`
        strategy; the stored score is then their mean.
        """


class _Unset:
    """The default of the deprecated selection keywords: tells "not given" from ``None``."""

    def __repr__(self) -> str:
        return "<deprecated>"


_UNSET = _Unset()


def _selection(selection, owner: str, k, threshold, strategy, mix) -> SelectionStrategy:
    """The strategy to use: ``selection``, or one built from the deprecated keywords (with a
    DeprecationWarning), or the paper's ``TopK(4000)``."""
    given = {"k": k, "threshold": threshold, "strategy": strategy, "mix": mix}
    legacy = {name: value for name, value in given.items() if value is not _UNSET}
    if selection is not None:
        if legacy:
            raise ParameterError(
                f"{owner}: give either a selection strategy or the deprecated keywords "
                f"{sorted(legacy)}, not both."
            )
        if not isinstance(selection, SelectionStrategy):
            raise ParameterError(
                f"The 'selection' parameter of {owner} must be a selection strategy such as "
                f"TopK(4000), Above(0.9) or Bald(4000, mix=0.5) (clusterlens.loop). "
                f"Got {selection!r}."
            )
        return selection
    if not legacy:
        return TopK(4000)
    new = _from_keywords(owner, **legacy)
    warnings.warn(
        f"{owner}({', '.join(f'{n}=' for n in legacy)}) is deprecated; pass a selection "
        f"strategy instead: {new!r} (from clusterlens.loop).",
        DeprecationWarning,
        stacklevel=3,
    )
    return new


def _from_keywords(owner, k=4000, threshold=None, strategy="top_k", mix=0.0) -> SelectionStrategy:
    """The strategy the keywords of clusterlens 0.1 meant (a threshold overrides ``k``)."""
    if strategy not in ("top_k", "bald"):
        raise ParameterError(
            f"The 'strategy' parameter of {owner} must be 'top_k' or 'bald'. Got {strategy!r}."
        )
    if strategy == "bald":
        if k is None or threshold is not None:
            raise ParameterError(f"{owner}: strategy 'bald' needs k and no threshold.")
        return Bald(k, mix=mix)
    if mix:
        raise ParameterError(f"{owner}: 'mix' applies to strategy 'bald' only. Got mix={mix!r}.")
    if threshold is not None:
        return Above(threshold)
    if k is None:
        raise ParameterError(f"{owner}: give k or threshold.")
    return TopK(k)


def _check_chosen(chosen, n: int, selection) -> np.ndarray:
    """A strategy's selection as distinct int64 indices into the ``n`` scored objects."""
    chosen = np.asarray(chosen)
    if chosen.ndim != 1 or (chosen.size and chosen.dtype.kind not in "iu"):
        raise ParameterError(f"{selection!r}.select must return 1-d integer indices.")
    chosen = chosen.astype(np.int64)
    out_of_range = chosen.size and (chosen.min() < 0 or chosen.max() >= n)
    if out_of_range or np.unique(chosen).size < chosen.size:
        raise ParameterError(
            f"{selection!r}.select must return distinct indices in [0, {n}); got {chosen[:5]}..."
        )
    return chosen


class IterationMixin(ProjectStore):
    """The iterations of a :class:`~clusterlens.loop.SearchProject` (a part of it)."""

    def iterations(self) -> list[dict]:
        """All iterations as dicts, in order.

        Keys: ``number``, ``state`` (``"open"`` or ``"applied"``), ``model_path``,
        ``strategy`` (``"top_k"``, ``"above"``, ``"bald"``), ``k`` and ``mix`` (the
        strategy's, ``None`` where it has none), ``threshold`` (lowest selected score, or the
        :class:`~clusterlens.loop.Above` threshold), ``n_scored``, ``n_selected``,
        ``purity``, ``completeness``, ``created_at``, ``applied_at`` (Unix time),
        ``lowest_new_score``, ``n_new``, ``n_new_negatives``.
        """
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
        selection: SelectionStrategy | None = None,
        *,
        test_set: tuple[Sequence[str], Sequence[int]] | None = None,
        k=_UNSET,
        threshold=_UNSET,
        strategy=_UNSET,
        mix=_UNSET,
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
        selection : SelectionStrategy, optional
            Which objects to open: :class:`~clusterlens.loop.TopK` ``(k)`` (default
            ``TopK(4000)``, the paper's), :class:`~clusterlens.loop.Above` ``(threshold)``
            or :class:`~clusterlens.loop.Bald` ``(k, mix)`` (the scorer must then return
            probability samples ``(n_samples, n)``).
        test_set : (ids, labels), optional
            A labelled test set (e.g. known lenses and non-lenses); the iteration's purity
            and completeness on it, at the selection threshold, go into Table 2.
        k, threshold, strategy, mix
            Deprecated (clusterlens 0.1): ``k=K`` is ``TopK(K)``, ``threshold=T`` is
            ``Above(T)``, ``strategy="bald", mix=M`` is ``Bald(K, mix=M)``.
        """
        owner = "SearchProject.iterate"
        selection = _selection(selection, owner, k, threshold, strategy, mix)
        if not isinstance(trainer, Trainer):
            raise ParameterError(
                f"The 'trainer' parameter of {owner} must have a "
                f"train(positives, negatives, previous_model) method. Got {trainer!r}."
            )
        if not isinstance(scorer, Scorer):
            raise ParameterError(
                f"The 'scorer' parameter of {owner} must have a "
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
            str(model), pool, raw, selection, test_set=test_set, scorer=scorer
        )

    def record_iteration(
        self,
        model_path: str | None,
        object_ids: Sequence[str],
        scores,
        selection: SelectionStrategy | None = None,
        *,
        test_set=None,
        scorer: Scorer | None = None,
        k=_UNSET,
        threshold=_UNSET,
        strategy=_UNSET,
        mix=_UNSET,
    ) -> int:
        """Record an iteration from scores computed elsewhere (e.g. ``clusterlens score``).

        ``scores`` has shape ``(n,)`` or ``(n_samples, n)`` for ``object_ids``, which must all
        be in the pool. Other parameters as :meth:`iterate` (``test_set`` needs ``scorer``).
        """
        owner = "SearchProject.record_iteration"
        selection = _selection(selection, owner, k, threshold, strategy, mix)
        ids = [str(i) for i in object_ids]
        raw = check_array(scores, "scores", owner)
        if raw.ndim not in (1, 2) or raw.shape[-1] != len(ids):
            raise ParameterError(
                f"The 'scores' parameter of {owner} must have shape (n,) or (n_samples, n) with "
                f"n = {len(ids)} objects. Got {raw.shape}."
            )
        score = raw.mean(axis=0) if raw.ndim == 2 else raw
        uncertainty = None
        if raw.ndim == 2:
            uncertainty = bald(raw) if raw.min() >= 0 and raw.max() <= 1 else raw.std(axis=0)
        chosen = selection.select(score, raw if raw.ndim == 2 else None)
        chosen = _check_chosen(chosen, len(ids), selection)
        thr = float(selection.recorded_threshold(score, chosen))
        record = selection.record()
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
                "INSERT INTO iterations (number, state, model_path, strategy, k, mix, threshold, "
                "n_scored, n_selected, purity, completeness, created_at) "
                "VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    number,
                    model_path,
                    record["strategy"],
                    record["k"],
                    record["mix"],
                    thr,
                    len(ids),
                    int(chosen.size),
                    purity,
                    completeness,
                    now(),
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
        iteration = check_iteration(iteration, "SearchProject.inspection_queue")
        rows = self._read(
            "SELECT s.object_id, s.rank, o.ra, o.dec, o.z, o.m500, sc.score FROM selections s "
            "JOIN objects o ON o.id = s.object_id LEFT JOIN scores sc "
            "ON sc.iteration = s.iteration AND sc.object_id = s.object_id "
            "WHERE s.iteration = ? ORDER BY s.rank",
            (iteration,),
        )
        names = ("id", "rank", "ra", "dec", "z", "m500", "score")
        return [dict(zip(names, r, strict=True)) for r in rows]

    def scores(self, iteration: int) -> dict[str, float]:
        """The scores of ``iteration`` as ``{object id: score}``."""
        return dict(
            self._read("SELECT object_id, score FROM scores WHERE iteration = ?", (iteration,))
        )

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
                (now(), lowest, len(lenses), len(non_lenses) if add_negatives else 0, number),
            )

        self._transaction(work)
        table = self.table()
        row = table[list(table["iteration"]).index(number)]
        return {name: row[name].item() for name in table.colnames}
