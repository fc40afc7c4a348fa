"""Classification metrics for a lens finder: ROC, precision-recall, purity, TPR0/TPR10.

Every function takes true labels (1 = lens, 0 = non-lens) and real-valued scores (larger =
more lens-like; any monotonic scale works, probabilities or logits). An object is *selected*
at a threshold ``t`` when ``score >= t``. Objects with tied scores are never split: one
distinct score value is one threshold step, so every curve point is reachable by a real
threshold and tied groups contribute diagonal ROC segments (the AUC then equals the
Mann-Whitney probability ``P(s_lens > s_non-lens) + 0.5 P(s_lens = s_non-lens)``).

Definitions (TP, FP, FN, TN counted among selected / unselected objects):

* TPR = recall = completeness = TP / (TP + FN); FPR = FP / (FP + TN);
* precision = purity = TP / (TP + FP) (the paper's eqs. 2-5, Zhang et al. 2026, section 3);
* TPR0 and TPR10 (Metcalf et al. 2019, the Strong Gravitational Lens Finding Challenge):
  the largest TPR reached while fewer than 1, respectively fewer than 10, non-lenses are
  selected.

The results agree with scikit-learn (tested), which is not needed at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError

if TYPE_CHECKING:  # for annotations only
    from matplotlib.figure import Figure

__all__ = [
    "PAPER_THRESHOLD",
    "RocCurve",
    "PrecisionRecallCurve",
    "roc_curve",
    "roc_auc",
    "precision_recall_curve",
    "average_precision",
    "purity_completeness",
    "precision_at",
    "recall_at",
    "threshold_top_k",
    "threshold_for_precision",
    "tpr_at_false_positives",
    "tpr0",
    "tpr10",
    "plot_roc",
    "plot_precision_recall",
    "plot_roc_pr",
    "expected_calibration_error",
]

#: The probability threshold of the paper's last iteration (Zhang et al., Figure 5: 0.986,
#: marked with red stars on the ROC and PR curves), the default of ``clusterlens evaluate``.
PAPER_THRESHOLD = 0.986


class RocCurve(NamedTuple):
    """A ROC curve, one point per distinct score plus the empty selection first.

    Attributes
    ----------
    fpr, tpr : ndarray
        False- and true-positive rates, non-decreasing, starting at (0, 0), ending at (1, 1).
    thresholds : ndarray
        Decreasing; point ``i`` selects ``score >= thresholds[i]``; ``thresholds[0] = inf``.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


class PrecisionRecallCurve(NamedTuple):
    """A precision-recall curve, one point per distinct score, thresholds decreasing.

    Attributes
    ----------
    precision, recall : ndarray
        Purity and completeness when selecting ``score >= thresholds[i]``; recall is
        non-decreasing and ends at 1.
    thresholds : ndarray
        The distinct scores, decreasing.
    """

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray


# ---------------------------------------------------------------------------------------------
# validation and the shared threshold steps


def _check_labels_scores(labels, scores, owner: str, *, need_both: bool = True):
    """Return ``(labels as int8, scores as float64)`` after checking them, or raise."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"The 'scores' parameter of {owner} must be an array of numbers. Got {scores!r}."
        ) from exc
    y_raw = np.asarray(labels)
    if s.ndim != 1 or y_raw.ndim != 1:
        raise ParameterError(
            f"The 'labels' and 'scores' parameters of {owner} must be 1-dimensional arrays. "
            f"Got shapes {y_raw.shape} and {s.shape} instead."
        )
    if y_raw.shape != s.shape:
        raise ParameterError(
            f"The 'labels' and 'scores' parameters of {owner} must have the same length. "
            f"Got {y_raw.size} labels and {s.size} scores instead."
        )
    if s.size == 0:
        raise ParameterError(f"The 'labels' and 'scores' parameters of {owner} are empty.")
    if y_raw.dtype == bool:
        y = y_raw.astype(np.int8)
    else:
        try:
            yf = y_raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"The 'labels' parameter of {owner} must hold 0 (non-lens) or 1 (lens). "
                f"Got values of type {y_raw.dtype} instead."
            ) from exc
        bad = ~((yf == 0) | (yf == 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ParameterError(
                f"The 'labels' parameter of {owner} must hold 0 (non-lens) or 1 (lens). "
                f"Got {y_raw[i].item()!r} at index {i} ({int(bad.sum())} bad value(s) in all)."
            )
        y = yf.astype(np.int8)
    bad = ~np.isfinite(s)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(
            f"The 'scores' parameter of {owner} must hold finite values. Got {s[i].item()!r} at "
            f"index {i} ({int(bad.sum())} NaN or infinite value(s) in all)."
        )
    if need_both:
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == y.size:
            which = "lenses (1)" if n_pos == 0 else "non-lenses (0)"
            raise ParameterError(
                f"The 'labels' parameter of {owner} must contain both classes; it has no "
                f"{which}, so the rate is undefined."
            )
    return y, s


def _steps(y: np.ndarray, s: np.ndarray):
    """Cumulative (TP, FP) after selecting each distinct score, scores decreasing.

    Returns ``(thresholds, tp, fp)``; ``thresholds`` are the distinct scores in decreasing
    order and ``tp[i], fp[i]`` count the objects with ``score >= thresholds[i]``.
    """
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    y_sorted = y[order].astype(np.int64)
    # last index of every run of equal scores: tied objects enter together
    last = np.flatnonzero(np.diff(s_sorted) != 0)
    last = np.r_[last, s_sorted.size - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    return s_sorted[last], tp, fp


def _check_threshold(threshold, owner: str) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
        raise ParameterError(
            f"The 'threshold' parameter of {owner} must be a float. Got {threshold!r}."
        )
    t = float(threshold)
    if np.isnan(t):
        raise ParameterError(f"The 'threshold' parameter of {owner} must not be NaN.")
    return t


# ---------------------------------------------------------------------------------------------
# curves and areas


def roc_curve(labels, scores) -> RocCurve:
    """Receiver operating characteristic: (FPR, TPR) at every distinct score.

    Parameters
    ----------
    labels : array_like of {0, 1} or bool, shape (n,)
        1 for a lens, 0 for a non-lens; both classes must be present.
    scores : array_like of float, shape (n,)
        Classifier scores, larger = more lens-like; finite.

    Returns
    -------
    RocCurve
        ``(fpr, tpr, thresholds)``, with the point (0, 0) at threshold ``inf`` first.
    """
    y, s = _check_labels_scores(labels, scores, "roc_curve")
    thr, tp, fp = _steps(y, s)
    n_pos, n_neg = tp[-1], fp[-1]
    return RocCurve(
        fpr=np.r_[0.0, fp / n_neg],
        tpr=np.r_[0.0, tp / n_pos],
        thresholds=np.r_[np.inf, thr],
    )


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (trapezoids; ties count one half).

    Equal to the probability that a random lens outscores a random non-lens, ties counted
    one half (the Mann-Whitney U statistic divided by ``n_lens * n_non_lens``). 0.5 is
    chance, 1 a perfect ranking. Parameters as :func:`roc_curve`.
    """
    y, s = _check_labels_scores(labels, scores, "roc_auc")
    _, tp, fp = _steps(y, s)
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) * 0.5))


def precision_recall_curve(labels, scores) -> PrecisionRecallCurve:
    """Precision (purity) and recall (completeness) at every distinct score.

    Parameters as :func:`roc_curve`; at least one lens is needed (non-lenses may be
    absent). Thresholds decrease, so recall grows along the arrays.
    """
    y, s = _check_labels_scores(labels, scores, "precision_recall_curve", need_both=False)
    if not y.any():
        raise ParameterError(
            "The 'labels' parameter of precision_recall_curve must contain at least one lens "
            "(1); recall is undefined without one."
        )
    thr, tp, fp = _steps(y, s)
    return PrecisionRecallCurve(precision=tp / (tp + fp), recall=tp / tp[-1], thresholds=thr)


def average_precision(labels, scores) -> float:
    """Area under the precision-recall curve as a step sum, ``sum_n (R_n - R_{n-1}) P_n``.

    The same (non-interpolated) definition as scikit-learn's ``average_precision_score``.
    """
    p, r, _ = precision_recall_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, r]) * p))


# ---------------------------------------------------------------------------------------------
# values at one threshold


def purity_completeness(labels, scores, threshold) -> tuple[float, float]:
    """Purity (precision) and completeness (recall) when selecting ``score >= threshold``.

    Parameters
    ----------
    labels, scores : array_like, shape (n,)
        As in :func:`roc_curve`; at least one lens is needed.
    threshold : float
        Selection threshold in score units.

    Returns
    -------
    (purity, completeness) : tuple of float
        Purity is ``nan`` when nothing is selected (0 / 0).
    """
    y, s = _check_labels_scores(labels, scores, "purity_completeness", need_both=False)
    if not y.any():
        raise ParameterError(
            "The 'labels' parameter of purity_completeness must contain at least one lens (1)."
        )
    t = _check_threshold(threshold, "purity_completeness")
    sel = s >= t
    n_sel = int(sel.sum())
    tp = int(y[sel].sum())
    purity = tp / n_sel if n_sel else float("nan")
    return purity, tp / int(y.sum())


def precision_at(labels, scores, threshold) -> float:
    """Precision (purity) when selecting ``score >= threshold``; ``nan`` if none selected."""
    return purity_completeness(labels, scores, threshold)[0]


def recall_at(labels, scores, threshold) -> float:
    """Recall (completeness) when selecting ``score >= threshold``."""
    return purity_completeness(labels, scores, threshold)[1]


def threshold_top_k(scores, k: int, *, ties: str = "include") -> float:
    """The threshold that selects the K highest-scoring objects (``score >= threshold``).

    The paper inspects the top 4,000 objects of each iteration (Zhang et al. 2026, sec. 3.3).

    Parameters
    ----------
    scores : array_like of float, shape (n,)
        Finite scores.
    k : int
        How many objects to keep, ``k >= 1``. When ``k >= n`` the lowest score is returned.
    ties : {"include", "exclude"}
        Objects tied with the K-th score cannot be separated. ``"include"`` (default) returns
        the K-th highest score, so *at least* K objects are selected; ``"exclude"`` returns
        the lowest score that selects *at most* K objects (``inf`` when even the top score
        is tied more than K times).
    """
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"The 'scores' parameter of threshold_top_k must be an array of numbers. "
            f"Got {scores!r}."
        ) from exc
    if s.ndim != 1 or s.size == 0:
        raise ParameterError(
            f"The 'scores' parameter of threshold_top_k must be a non-empty 1-dimensional "
            f"array. Got shape {s.shape}."
        )
    if not np.isfinite(s).all():
        i = int(np.flatnonzero(~np.isfinite(s))[0])
        raise ParameterError(
            "The 'scores' parameter of threshold_top_k must hold finite values. "
            f"Got {s[i].item()!r} at index {i}."
        )
    k = check_int(k, "k", "threshold_top_k", low=1)
    if ties not in ("include", "exclude"):
        raise ParameterError(
            f"The 'ties' parameter of threshold_top_k must be 'include' or 'exclude'. Got {ties!r}."
        )
    k = int(k)
    if k >= s.size:
        return float(s.min())
    kth = float(-np.partition(-s, k - 1)[k - 1])
    if ties == "include":
        return kth
    if int((s >= kth).sum()) <= k:
        return kth
    above = s[s > kth]
    return float(above.min()) if above.size else float("inf")


def threshold_for_precision(labels, scores, target: float) -> float | None:
    """The lowest threshold whose selection (``score >= threshold``) has precision >= target.

    Among all threshold steps reaching the target purity, this returns the one with the
    largest completeness (the lowest threshold). Precision is not monotonic in the
    threshold, so a lower threshold may fall below the target again; this is the last step
    that still meets it.

    Parameters
    ----------
    labels, scores : array_like, shape (n,)
        As in :func:`precision_recall_curve`.
    target : float
        Required precision (purity) in (0, 1].

    Returns
    -------
    float or None
        The threshold, or ``None`` if no threshold reaches the target.
    """
    target = check_scalar(
        target, "target", "threshold_for_precision", low=0, high=1, low_inclusive=False
    )
    y, s = _check_labels_scores(labels, scores, "threshold_for_precision", need_both=False)
    if not y.any():
        raise ParameterError(
            "The 'labels' parameter of threshold_for_precision must contain at least one lens (1)."
        )
    thr, tp, fp = _steps(y, s)
    # compare tp >= target * (tp + fp) in exact arithmetic where possible
    ok = np.flatnonzero(tp >= target * (tp + fp) - 1e-12 * (tp + fp))
    return float(thr[ok[-1]]) if ok.size else None


def tpr_at_false_positives(labels, scores, max_false_positives: int) -> float:
    """Largest TPR over thresholds that select at most ``max_false_positives`` non-lenses.

    A threshold step includes all objects tied at its score, so a lens tied with a
    non-lens does not count before that non-lens does.

    Parameters
    ----------
    labels, scores : array_like, shape (n,)
        As in :func:`roc_curve` (both classes present).
    max_false_positives : int
        ``0`` gives TPR0, ``9`` gives TPR10 (fewer than ten false positives).
    """
    max_false_positives = check_int(
        max_false_positives, "max_false_positives", "tpr_at_false_positives", low=0
    )
    y, s = _check_labels_scores(labels, scores, "tpr_at_false_positives")
    _, tp, fp = _steps(y, s)
    ok = fp <= max_false_positives
    return float(tp[ok].max() / tp[-1]) if ok.any() else 0.0


def tpr0(labels, scores) -> float:
    """TPR0 of Metcalf et al. (2019): the fraction of lenses scored above every non-lens."""
    return tpr_at_false_positives(labels, scores, 0)


def tpr10(labels, scores) -> float:
    """TPR10 of Metcalf et al. (2019): the largest TPR with fewer than ten false positives."""
    return tpr_at_false_positives(labels, scores, 9)


# ---------------------------------------------------------------------------------------------
# plots (the paper's Figure 5)


def _as_sets(labels, scores, name):
    """Accept one (labels, scores) pair or a dict of named pairs; return a dict."""
    if isinstance(labels, dict):
        if scores is not None:
            raise ParameterError(
                f"{name}: pass either labels and scores, or a dict of name -> (labels, scores)."
            )
        return dict(labels)
    return {None: (labels, scores)}


def _new_axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4.2))
        return fig, ax
    return ax.figure, ax


def _marker_points(curve_x, curve_y, thresholds_curve, marks):
    """Curve points selecting ``score >= t``: the last step whose threshold is >= t."""
    pts = []
    for t in marks:
        i = np.flatnonzero(thresholds_curve >= t)
        if i.size:
            pts.append((float(t), curve_x[i[-1]], curve_y[i[-1]]))
    return pts


def plot_roc(labels, scores=None, *, thresholds=(), ax=None) -> Figure:
    """Plot ROC curves with their AUC in the legend, marking chosen thresholds with stars.

    Parameters
    ----------
    labels, scores : array_like, or a dict ``{name: (labels, scores)}`` as ``labels``
        One set, or several sets drawn on the same axes (e.g. validation mocks and real
        known lenses, as in the paper's Figure 5).
    thresholds : sequence of float
        Thresholds to mark (red stars), in score units.
    ax : matplotlib Axes, optional
        Draw into these axes; a new figure is made otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _new_axes(ax)
    for name, (y, s) in _as_sets(labels, scores, "plot_roc").items():
        fpr, tpr, thr = roc_curve(y, s)
        auc = roc_auc(y, s)
        label = f"AUC = {auc:.3f}" if name is None else f"{name} (AUC = {auc:.3f})"
        ax.plot(fpr, tpr, lw=1.5, label=label)
        for _, x, yy in _marker_points(fpr, tpr, thr, thresholds):
            ax.plot(x, yy, "*", color="red", ms=11, zorder=5)
    ax.plot([0, 1], [0, 1], ls=":", color="0.6", lw=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_precision_recall(labels, scores=None, *, thresholds=(), ax=None) -> Figure:
    """Plot precision-recall curves, marking chosen thresholds with red stars.

    Same parameters and return value as :func:`plot_roc`; the legend gives the average
    precision.
    """
    fig, ax = _new_axes(ax)
    for name, (y, s) in _as_sets(labels, scores, "plot_precision_recall").items():
        p, r, thr = precision_recall_curve(y, s)
        ap = average_precision(y, s)
        label = f"AP = {ap:.3f}" if name is None else f"{name} (AP = {ap:.3f})"
        ax.plot(np.r_[0.0, r], np.r_[p[0], p], lw=1.5, label=label, drawstyle="steps-pre")
        for _, x, yy in _marker_points(r, p, thr, thresholds):
            ax.plot(x, yy, "*", color="red", ms=11, zorder=5)
    ax.set(xlabel="Recall (completeness)", ylabel="Precision (purity)", xlim=(0, 1))
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize="small")
    return fig


def plot_roc_pr(labels, scores=None, *, thresholds=()) -> Figure:
    """The paper's Figure 5: ROC (left) and precision-recall (right) panels side by side.

    Parameters as :func:`plot_roc`. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(9, 4.2))
    plot_roc(labels, scores, thresholds=thresholds, ax=ax_roc)
    plot_precision_recall(labels, scores, thresholds=thresholds, ax=ax_pr)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# calibration


def expected_calibration_error(labels, probabilities, *, n_bins: int = 15) -> float:
    """Expected calibration error of lens probabilities (Naeini et al. 2015).

    The probabilities are put in ``n_bins`` equal-width bins of [0, 1]; the ECE is the
    mean over images of ``|fraction of lenses - mean probability|`` of their bin.  0 for a
    perfectly calibrated score.

    Parameters
    ----------
    labels : array_like of {0, 1}
    probabilities : array_like of float in [0, 1]
    n_bins : int
    """
    y, p = _check_labels_scores(
        labels, probabilities, "expected_calibration_error", need_both=False
    )
    if ((p < 0) | (p > 1)).any():
        raise ParameterError("expected_calibration_error needs probabilities in [0, 1].")
    n_bins = check_int(n_bins, "n_bins", "expected_calibration_error", low=1)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() * abs(y[inside].mean() - p[inside].mean())
    return float(total / y.size)
