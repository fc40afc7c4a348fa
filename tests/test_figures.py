"""Figures 9 and 13 of a finished search."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from astropy.table import Table

from clusterlens.errors import ParameterError
from clusterlens.figures import disputed_candidates, grade_votes, plot_candidate_parameters

matplotlib.use("Agg")


@pytest.fixture
def catalog():
    rng = np.random.default_rng(0)
    n = 9
    return Table(
        {
            "CLUSTER_ID": np.arange(n),
            "M_500": rng.uniform(14, 15, n),
            "PZ_BCG": rng.uniform(0.2, 0.6, n),
            "SHAPE_R_BCG": np.full(n, np.nan),  # not measured: the panel says so
            "R_EIN": rng.uniform(5, 15, n),
            "GRADE": list("AAABBBCCC"),
            "GRADE_STD": [0.0, 0.9, 0.2, 0.0, 0.5, np.nan, 0.1, 0.8, 0.0],
            "GRADE_ann": list("AAABBBCCC"),
            "GRADE_bob": list("ACABABCAC"),
            "GRADE_MEAN": np.zeros(n),
        }
    )


def test_figure9_panels(catalog):
    training = Table({"log_m500": [14.2, 14.5], "z_lens": [0.3, 0.4], "einstein_radius": [6, 9]})
    fig = plot_candidate_parameters(catalog, training)
    axes = fig.axes
    assert len(axes) == 4
    assert any(t.get_text() == "not measured" for t in axes[2].texts)
    # stacked grade histograms plus the training histogram on the mass panel
    assert len(axes[0].patches) > 0
    assert axes[0].get_legend() is not None


def test_figure9_rejects_a_table_without_the_catalog_columns():
    with pytest.raises(ParameterError, match="export_catalog"):
        plot_candidate_parameters(Table({"M_500": [14.0]}))
    with pytest.raises(ParameterError, match="astropy Table"):
        plot_candidate_parameters({"M_500": [14.0]})


def test_figure13_most_disputed_first(catalog):
    rows = disputed_candidates(catalog, n=3)
    assert list(rows["CLUSTER_ID"]) == [1, 7, 4]  # std 0.9, 0.8, 0.5; NaN last
    assert list(rows["VOTES"]) == ["AC", "AC", "AB"]
    assert grade_votes(catalog)[0] == "AA"
    with pytest.raises(ParameterError):
        disputed_candidates(catalog, n=0)


def test_paper_to_code_example_runs(tmp_path, monkeypatch):
    """The runnable block of docs/paper-to-code.md (Figures 9 and 13) works as shown."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parent.parent / "docs" / "paper-to-code.md"
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, page.name, "exec"), namespace)  # noqa: S102
    assert len(namespace["rows"]) == 3
