"""Figure 4 of the paper from a run's per-epoch records (see :mod:`clusterlens.nets.training`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # for annotations only
    from matplotlib.figure import Figure

__all__ = ["plot_training_history"]


def plot_training_history(history, *, best_epoch: int | None = None, path=None) -> Figure:
    """Figure 4 of the paper: loss, validation AUC and its derivative against epoch.

    Parameters
    ----------
    history : list of dict, or a path to ``metrics.json``
        Per-epoch records with ``epoch``, ``train_loss``, ``val_loss``, ``val_auc``.
    best_epoch : int, optional
        Marked with a dashed vertical line (the early-stopping point).
    path : str or Path, optional
        Save the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if isinstance(history, str | os.PathLike):
        history = json.loads(Path(history).read_text())
    epochs = np.array([h["epoch"] for h in history], dtype=float)
    auc = np.array([h["val_auc"] for h in history])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    # points as well as lines for a short run: a single epoch draws no line at all
    mark = {"marker": "o", "ms": 4} if epochs.size <= 20 else {}
    axes[0].plot(epochs, [h["train_loss"] for h in history], label="training", **mark)
    axes[0].plot(epochs, [h["val_loss"] for h in history], label="validation", **mark)
    axes[0].set_ylabel("cross-entropy loss")
    axes[0].legend()
    axes[1].plot(epochs, auc, color="C2", **mark)
    axes[1].set_ylabel("validation AUC")
    derivative = np.gradient(auc, epochs) if len(auc) > 1 else np.zeros_like(auc)
    axes[2].plot(epochs, derivative, color="C3", **mark)
    axes[2].axhline(0, color="0.6", lw=0.8)
    axes[2].set_ylabel("d AUC / d epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        # whole epochs only, with half an epoch of margin: one epoch (a quick run) would
        # otherwise get ticks 0.95...1.05
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs.size:
            ax.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
        if best_epoch:
            ax.axvline(best_epoch, ls="--", color="0.3", lw=1)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
