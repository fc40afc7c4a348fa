"""What a small run shows is legible: whole-number epoch and iteration ticks, Figure 6 names
what purity was measured on, Table 2 in the terminal with readable headers and formats."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from astropy.table import Table

matplotlib.use("Agg")


def _ticks_are_whole(ax):
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("n_epochs", [1, 2, 7])
def test_training_history_has_whole_epoch_ticks_for_any_length(n_epochs):
    import matplotlib.pyplot as plt

    from clusterlens.nets.training import plot_training_history

    history = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_auc": 0.5 + 0.01 * e}
        for e in range(1, n_epochs + 1)
    ]
    fig = plot_training_history(history)
    try:
        assert all(_ticks_are_whole(ax) for ax in fig.axes)
    finally:
        plt.close(fig)


@pytest.fixture
def project(tmp_path):
    from clusterlens.loop import SearchProject, TopK

    objects = Table({"id": ["a", "b", "c", "d"], "ra": [1.0, 2, 3, 4], "dec": [0.0, 0, 0, 0]})
    p = SearchProject.create(tmp_path / "s.sqlite", objects)
    for number, ids in ((1, ["a", "b"]), (2, ["c", "d"])):
        p.record_iteration("model.pt", ids, [0.9, 0.8], TopK(2))
        p.record_decision(ids[0], number, "ann", is_lens=True, grade="A")
        p.record_decision(ids[1], number, "ann", is_lens=False)
        p.apply()
    yield p
    p.close()


def test_figure6_names_its_test_set_and_has_whole_iteration_ticks(project):
    import matplotlib.pyplot as plt

    fig = project.plot_progress(test_label="whole survey")
    try:
        assert fig.axes[1].get_ylabel() == "Purity on whole survey (%)"
        assert fig.axes[2].get_ylabel() == "Completeness on whole survey (%)"
        assert all(_ticks_are_whole(ax) for ax in fig.axes)
    finally:
        plt.close(fig)
    fig = project.plot_progress()
    assert fig.axes[1].get_ylabel() == "Purity on test set (%)"
    plt.close(fig)


def test_figure6_of_a_single_iteration_has_a_whole_tick(tmp_path):
    import matplotlib.pyplot as plt

    from clusterlens.loop import SearchProject, TopK

    objects = Table({"id": ["a", "b"], "ra": [1.0, 2], "dec": [0.0, 0]})
    p = SearchProject.create(tmp_path / "one.sqlite", objects)
    try:
        p.record_iteration("model.pt", ["a", "b"], [0.9, 0.8], TopK(2))
        p.record_decision("a", 1, "ann", is_lens=True, grade="B")
        p.record_decision("b", 1, "ann", is_lens=False)
        p.apply()
        fig = p.plot_progress()
        assert all(_ticks_are_whole(ax) for ax in fig.axes)
        plt.close(fig)
    finally:
        p.close()


def test_table2_in_the_terminal_is_formatted(project):
    from clusterlens.cli.demo import table2_lines

    table = project.table()
    table["purity"] = [0.25, math.nan]
    table["threshold"] = np.array([0.512345, 0.8])
    header, first, second = table2_lines(table)
    assert header.split() == [
        "iteration", "threshold", "lowest", "new", "selected", "new", "total", "A", "B", "C",
        "purity", "%", "completeness", "%",
    ]  # fmt: skip
    assert "threshold_tp" not in header and "cum_A" not in header
    cells = first.split()
    assert cells[0] == "1" and cells[1] == "0.512" and cells[9] == "25.0"
    assert second.split()[9] == "-"  # NaN purity
    assert len({len(line) for line in (header, first, second)}) == 1  # aligned
