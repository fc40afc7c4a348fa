"""The search's results: final grades, the paper's Table 2 and Figure 6, the catalogue.

What the graders decided, aggregated as Zhang et al. (2026) do (:mod:`clusterlens.loop.
grading`): one grade per found lens from all graders' latest votes, the per-iteration
counts of Table 2 with test-set purity and completeness, the stopping rule, the progress
figure (Figure 6) and the candidate catalogue with the published catalogue's columns.

:class:`CatalogueMixin` is the part of :class:`~clusterlens.loop.SearchProject` that reads
them out; it only reads the store (:mod:`clusterlens.loop._store`) and uses ``ids`` and
``iterations`` of the other parts.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clusterlens._validation import check_int
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop._store import ProjectStore
from clusterlens.loop.grading import aggregate_grades, grade_spread
from clusterlens.loop.grading import einstein_radius_from_points as _einstein_radius

if TYPE_CHECKING:  # for annotations only
    from astropy.table import Table
    from matplotlib.figure import Figure

__all__ = ["CATALOG_COLUMNS"]  # the mixin is documented as SearchProject

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


class CatalogueMixin(ProjectStore):
    """The results of a :class:`~clusterlens.loop.SearchProject` (a part of it)."""

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
        patience = check_int(patience, "patience", "should_stop", low=1)
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
        from clusterlens._io import atomic_path
        from clusterlens._provenance import provenance, table_for_fits

        for name, unit in _EXPORT_UNITS.items():
            table[name].unit = unit
        table.meta.update(provenance())
        out = table if fmt == "csv" else table_for_fits(table)  # CSV keeps neither
        with atomic_path(path) as tmp:
            out.write(tmp, format="ascii.csv" if fmt == "csv" else "fits", overwrite=True)
        return table


#: Units (FITS TUNIT) of the physical columns of :meth:`CatalogueMixin.export_catalog`.
_EXPORT_UNITS = {
    "RA_BCG": "deg",
    "DEC_BCG": "deg",
    "R_500": "Mpc",
    "SHAPE_R_BCG": "arcsec",
    "R_EIN": "arcsec",
}
