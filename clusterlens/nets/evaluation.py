"""Evaluating a finder on a labelled dataset: the figures it is judged by, side by side.

:func:`evaluate` scores a dataset with a checkpoint or committee through the production
scoring path (:class:`~clusterlens.nets.scoring.Scorer`: the model's own input transform,
crop and calibration) and returns an :class:`EvaluationReport` with AUC, TPR0, TPR10
(Metcalf et al. 2019), average precision, purity and completeness at a threshold (the
paper's 0.986 by default), and the calibration figures (NLL, ECE) of the scores.
:func:`evaluate_many` does it for several datasets with one model loaded once and
:func:`format_reports` prints them as one table, the in-distribution set beside the others.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clusterlens.errors import ParameterError
from clusterlens.metrics import PAPER_THRESHOLD

__all__ = ["EvaluationReport", "evaluate", "evaluate_many", "format_reports"]


@dataclass
class EvaluationReport:
    """Figures of one model on one labelled dataset.

    Attributes
    ----------
    name : str
        A label for the dataset.
    n, n_lenses : int
        Images and lenses scored.
    auc, average_precision : float
    tpr0, tpr10 : float
        Largest completeness with no, and with fewer than ten, false positives.
    threshold : float
        The probability threshold of ``purity``/``completeness``.
    purity, completeness : float
        Precision and recall of ``score >= threshold`` (purity is NaN when nothing is
        selected).
    n_selected : int
        Images at or above the threshold.
    nll, ece : float
        Mean cross-entropy and expected calibration error of the scores.
    model : str
        The model's path.
    labels, scores : ndarray
        Per image, in dataset order (not written to JSON).
    """

    name: str
    n: int
    n_lenses: int
    auc: float
    average_precision: float
    tpr0: float
    tpr10: float
    threshold: float
    purity: float
    completeness: float
    n_selected: int
    nll: float
    ece: float
    model: str = ""
    labels: np.ndarray = field(default=None, repr=False)
    scores: np.ndarray = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The figures as plain data (no per-image arrays); NaN becomes None."""
        out = {}
        for key, value in self.__dict__.items():
            if key in ("labels", "scores"):
                continue
            if isinstance(value, float) and not np.isfinite(value):
                value = None
            out[key] = value
        return out

    def plot(self, path=None):
        """ROC and precision-recall panels (the paper's Figure 5) with the threshold starred;
        saved to ``path`` when given.  Returns the matplotlib Figure."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        from clusterlens.metrics import plot_roc_pr

        fig = plot_roc_pr({self.name: (self.labels, self.scores)}, thresholds=[self.threshold])
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def write(self, out) -> dict:
        """Write ``evaluation.json``, ``roc_pr.png`` and ``scores.csv`` (label, score) into
        the folder ``out``; returns the paths written."""
        import matplotlib.pyplot as plt

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out / "evaluation.json",
            "plot": out / "roc_pr.png",
            "scores": out / "scores.csv",
        }
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1))
        fig = self.plot(paths["plot"])
        plt.close(fig)
        np.savetxt(
            paths["scores"],
            np.c_[self.labels, self.scores],
            delimiter=",",
            header="label,score",
            comments="",
            fmt=["%d", "%.8g"],
        )
        return paths


def _report(name, labels, scores, threshold, model) -> EvaluationReport:
    from clusterlens.metrics import (
        average_precision,
        expected_calibration_error,
        roc_auc,
        tpr0,
        tpr10,
    )

    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    selected = p >= threshold
    tp = int((selected & (y == 1)).sum())
    n_sel = int(selected.sum())
    eps = 1e-12
    nll = float(-np.mean(np.where(y == 1, np.log(p + eps), np.log(1 - p + eps))))
    return EvaluationReport(
        name=name,
        n=int(y.size),
        n_lenses=int((y == 1).sum()),
        auc=roc_auc(y, p),
        average_precision=average_precision(y, p),
        tpr0=tpr0(y, p),
        tpr10=tpr10(y, p),
        threshold=float(threshold),
        purity=tp / n_sel if n_sel else float("nan"),
        completeness=tp / max(1, int((y == 1).sum())),
        n_selected=n_sel,
        nll=nll,
        ece=expected_calibration_error(y, p),
        model=model,
        labels=y,
        scores=p,
    )


def _scorer(model, batch_size, device, progress, symmetries=1):
    from clusterlens.nets.scoring import Scorer, ScoringConfig

    if isinstance(model, Scorer):
        return model
    if isinstance(model, str | os.PathLike):
        config = ScoringConfig(
            batch_size=batch_size, device=device, progress=progress, symmetries=symmetries
        )
        return Scorer(model, config)
    raise ParameterError(
        "The 'model' parameter of evaluate must be a checkpoint or committee path, or a "
        f"Scorer. Got {type(model).__name__} instead."
    )


def evaluate(
    model,
    dataset,
    *,
    threshold: float = PAPER_THRESHOLD,
    name: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = False,
    symmetries: int = 1,
) -> EvaluationReport:
    """Score a labelled dataset with a model and compute the finder's figures.

    Parameters
    ----------
    model : str, Path or Scorer
        A checkpoint (``best.pt``), a committee manifest (``*.json``), or a
        :class:`~clusterlens.nets.scoring.Scorer` (reused, so the model is loaded once).
    dataset : LensDataset, path, or (images, labels)
        A dataset with lenses and non-lenses whose images are at least the model's crop
        (cut about their centre), or an in-memory pair of (n, band, y, x) fluxes
        [nanomaggies] and 0/1 labels.
    threshold : float in (0, 1)
        Probability threshold of purity and completeness (the paper's 0.986).
    name : str, optional
        Label of the dataset in reports (default: its folder name, or ``"data"``).
    batch_size, device, progress, symmetries
        Scoring options when ``model`` is a path (``symmetries``: test-time views per
        image, :attr:`~clusterlens.nets.scoring.ScoringConfig.symmetries`).

    Returns
    -------
    EvaluationReport
    """
    from clusterlens._validation import check_scalar
    from clusterlens.datasets import LensDataset, center_crop

    threshold = check_scalar(threshold, "threshold", "evaluate", low=0, high=1)
    scorer = _scorer(model, batch_size, device, progress, symmetries)
    if isinstance(dataset, tuple):
        images, labels = dataset
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] < scorer.config.size:
            raise ParameterError(
                f"evaluate: the images have shape {images.shape}; the model needs (n, band, "
                f"y, x) of at least {scorer.config.size} pixels."
            )
        images = np.ascontiguousarray(center_crop(images, scorer.config.size))
        scores = scorer.predict(images)
        labels = np.asarray(labels)
        name = name or "data"
    else:
        if isinstance(dataset, str | os.PathLike):
            dataset = LensDataset(dataset)
        if not isinstance(dataset, LensDataset):
            raise ParameterError(
                "The 'dataset' parameter of evaluate must be a LensDataset, a dataset path "
                f"or (images, labels). Got {type(dataset).__name__} instead."
            )
        table = scorer.score(dataset)
        position = {int(i): k for k, i in enumerate(dataset.indices)}
        scores = np.empty(len(dataset))
        scores[[position[int(i)] for i in table["id"]]] = np.asarray(table["score"])
        labels = dataset.view_labels
        name = name or Path(dataset.path).name
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ParameterError(f"evaluate: the dataset {name!r} must hold lenses and non-lenses.")
    return _report(name, labels, scores, threshold, str(scorer.path))


def evaluate_many(model, datasets: dict, **options) -> dict[str, EvaluationReport]:
    """:func:`evaluate` on each ``{name: dataset}``, loading the model once; returns
    ``{name: EvaluationReport}`` in the same order."""
    if not isinstance(datasets, dict) or not datasets:
        raise ParameterError("evaluate_many needs a non-empty dict of name -> dataset.")
    scorer_options = {
        k: options.pop(k) for k in ("batch_size", "device", "progress") if k in options
    }
    scorer = _scorer(
        model,
        scorer_options.get("batch_size", 64),
        scorer_options.get("device", "auto"),
        scorer_options.get("progress", False),
    )
    return {name: evaluate(scorer, data, name=name, **options) for name, data in datasets.items()}


def format_reports(reports) -> str:
    """A plain-text table of reports (a dict or a list), one row per dataset."""
    rows = list(reports.values()) if isinstance(reports, dict) else list(reports)
    header = (
        f"{'dataset':<24} {'n':>6} {'lenses':>6} {'AUC':>6} {'TPR0':>6} {'TPR10':>6} "
        f"{'purity':>7} {'compl.':>7} {'ECE':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        purity = "   n/a" if not np.isfinite(r.purity) else f"{r.purity:7.3f}"
        lines.append(
            f"{r.name[:24]:<24} {r.n:>6} {r.n_lenses:>6} {r.auc:6.3f} {r.tpr0:6.3f} "
            f"{r.tpr10:6.3f} {purity:>7} {r.completeness:7.3f} {r.ece:6.3f}"
        )
    if rows:
        lines.append(f"(purity and completeness at score >= {rows[0].threshold:g})")
    return "\n".join(lines)
