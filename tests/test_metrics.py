"""Tests of clusterlens.metrics against scikit-learn and hand-counted cases."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from clusterlens import metrics as M
from clusterlens.errors import ParameterError

sk = pytest.importorskip("sklearn.metrics")


def _cases():
    rng = np.random.default_rng(20261124)
    out = {}
    n = 300
    y = rng.integers(0, 2, n)
    out["random"] = (y, rng.normal(size=n) + 0.8 * y)
    out["many_ties"] = (y, np.round(rng.normal(size=n) + y, 0))  # ~7 distinct values
    out["two_values"] = (y, rng.integers(0, 2, n).astype(float))
    out["all_equal"] = (y, np.full(n, 0.3))
    out["perfect"] = (y, y + rng.uniform(0, 0.5, n))
    out["inverted"] = (y, -(y + rng.uniform(0, 0.5, n)))
    out["imbalanced"] = ((rng.uniform(size=n) < 0.02).astype(int), rng.uniform(size=n))
    out["probabilities_near_1"] = (y, 1 - 10.0 ** rng.uniform(-6, -1, n) * (2 - y))
    out["tiny"] = (np.array([0, 1]), np.array([0.5, 0.5]))
    return out


CASES = _cases()


@pytest.mark.parametrize("name", CASES)
def test_roc_and_auc_match_sklearn(name):
    y, s = CASES[name]
    fpr, tpr, thr = M.roc_curve(y, s)
    fpr_sk, tpr_sk, thr_sk = sk.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_sk)
    np.testing.assert_allclose(tpr, tpr_sk)
    np.testing.assert_array_equal(thr[1:], thr_sk[1:])
    assert thr[0] == np.inf
    assert M.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_precision_recall_match_sklearn(name):
    y, s = CASES[name]
    p, r, thr = M.precision_recall_curve(y, s)
    p_sk, r_sk, thr_sk = sk.precision_recall_curve(y, s)
    # sklearn: thresholds increasing, plus a final (precision 1, recall 0) point
    lookup = {t: (pp, rr) for t, pp, rr in zip(thr, p, r, strict=True)}
    for t, pp, rr in zip(thr_sk, p_sk[:-1], r_sk[:-1], strict=True):
        assert lookup[t] == pytest.approx((pp, rr))
    assert M.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s))
    for t in np.unique(s)[:: max(1, len(np.unique(s)) // 5)]:
        pur, comp = M.purity_completeness(y, s, t)
        sel = (s >= t).astype(int)
        assert pur == pytest.approx(sk.precision_score(y, sel))
        assert comp == pytest.approx(sk.recall_score(y, sel))
        assert M.precision_at(y, s, t) == pur and M.recall_at(y, s, t) == comp


def test_hand_counted_ties():
    # one lens tied with the top non-lens: that group is one threshold step
    y = np.array([1, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.8, 0.5, 0.2, 0.2])
    fpr, tpr, thr = M.roc_curve(y, s)
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.8, 0.5, 0.2])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 1 / 3, 1])
    # Mann-Whitney by hand: pairs (lens > non-lens) = 3 + 2.5 + 2 of 9
    assert M.roc_auc(y, s) == pytest.approx((3 + 2.5 + 2) / 9)
    assert M.tpr0(y, s) == pytest.approx(1 / 3)  # the 0.8 lens is tied with a non-lens
    assert M.tpr_at_false_positives(y, s, 1) == pytest.approx(1.0)
    assert M.tpr10(y, s) == 1.0


def _tpr_at_fp_bruteforce(y, s, k):
    best = 0.0
    for t in np.r_[np.inf, np.unique(s)]:
        sel = s >= t
        if ((y == 0) & sel).sum() <= k:
            best = max(best, ((y == 1) & sel).sum() / (y == 1).sum())
    return best


@pytest.mark.parametrize("name", [c for c in CASES])
def test_tpr0_tpr10_against_roc_and_bruteforce(name):
    y, s = CASES[name]
    fpr, tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
    n_neg = (y == 0).sum()
    for k, f in ((0, M.tpr0), (9, M.tpr10)):
        expect = tpr[np.round(fpr * n_neg) <= k].max()
        assert f(y, s) == pytest.approx(expect)
        assert f(y, s) == pytest.approx(_tpr_at_fp_bruteforce(y, s, k))


def test_perfect_and_inverted_extremes():
    y, s = CASES["perfect"]
    assert M.roc_auc(y, s) == 1.0 and M.tpr0(y, s) == 1.0
    assert M.average_precision(y, s) == pytest.approx(1.0)
    y, s = CASES["inverted"]
    assert M.roc_auc(y, s) == 0.0 and M.tpr0(y, s) == 0.0
    y, s = CASES["all_equal"]
    assert M.roc_auc(y, s) == 0.5 and M.tpr10(y, s) == 0.0


def test_threshold_top_k_with_and_without_ties():
    s = np.array([5.0, 4, 4, 4, 3, 2, 1])
    assert M.threshold_top_k(s, 1) == 5.0
    assert M.threshold_top_k(s, 2) == 4.0  # 4 objects selected: ties included
    assert M.threshold_top_k(s, 2, ties="exclude") == 5.0  # 1 object selected
    assert M.threshold_top_k(s, 4, ties="exclude") == 4.0
    assert M.threshold_top_k(s, 100) == 1.0
    assert M.threshold_top_k(np.ones(5), 2, ties="exclude") == np.inf
    rng = np.random.default_rng(1)
    s = rng.uniform(size=10_000)
    t = M.threshold_top_k(s, 4000)
    assert (s >= t).sum() == 4000
    s = np.round(s, 2)
    t_in, t_ex = M.threshold_top_k(s, 4000), M.threshold_top_k(s, 4000, ties="exclude")
    assert (s >= t_in).sum() >= 4000 >= (s >= t_ex).sum()
    assert (s >= np.nextafter(t_in, np.inf)).sum() < 4000  # the smallest such threshold
    assert (s >= s[s < t_ex].max()).sum() > 4000  # the largest such threshold


def test_threshold_for_precision():
    y = np.array([1, 1, 0, 1, 1, 0, 0, 1, 0, 0])
    s = np.arange(10, 0, -1.0)
    # precision by step: 1, 1, .67, .75, .8, .67, .57, .625, .56, .5
    assert M.threshold_for_precision(y, s, 1.0) == 9.0
    assert M.threshold_for_precision(y, s, 0.75) == 6.0
    assert M.threshold_for_precision(y, s, 0.5) == 1.0
    assert M.threshold_for_precision(np.array([0, 1]), np.array([2.0, 1.0]), 0.9) is None
    rng = np.random.default_rng(3)
    y, s = CASES["many_ties"]
    for target in rng.uniform(0.5, 1, 20):
        t = M.threshold_for_precision(y, s, target)
        p_sk, _, thr_sk = sk.precision_recall_curve(y, s)
        ok = thr_sk[p_sk[:-1] >= target]
        assert t == (ok.min() if ok.size else None)


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], "same length"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "Got 2 at index 2"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "finite values.*index 1"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "both classes.*no non-lenses"),
        ([0, 0, 0], [0.1, 0.2, 0.3], "both classes.*no lenses"),
        ([], [], "empty"),
        ([[0, 1]], [[0.1, 0.2]], "1-dimensional"),
        (["a", "b"], [0.1, 0.2], "0 \\(non-lens\\) or 1"),
    ],
)
def test_bad_input_errors(labels, scores, match):
    with pytest.raises(ParameterError, match=match):
        M.roc_auc(labels, scores)


def test_bad_parameters():
    y, s = CASES["random"]
    with pytest.raises(ParameterError, match="'k' parameter"):
        M.threshold_top_k(s, 0)
    with pytest.raises(ParameterError, match="'ties' parameter"):
        M.threshold_top_k(s, 3, ties="random")
    with pytest.raises(ParameterError, match="'target' parameter"):
        M.threshold_for_precision(y, s, 1.5)
    with pytest.raises(ParameterError, match="max_false_positives"):
        M.tpr_at_false_positives(y, s, -1)
    with pytest.raises(ParameterError, match="at least one lens"):
        M.precision_recall_curve([0, 0], [1.0, 2.0])
    with pytest.raises(ParameterError, match="threshold"):
        M.purity_completeness(y, s, float("nan"))
    # precision with nothing selected is 0/0
    assert np.isnan(M.precision_at(y, s, s.max() + 1))
    # bool labels and non-lens-free PR curves are fine
    p, r, _ = M.precision_recall_curve([True, True], [1.0, 2.0])
    np.testing.assert_allclose(p, 1.0)


def test_plots_return_figures_with_markers():
    y, s = CASES["random"]
    yt, st = CASES["many_ties"]
    fig = M.plot_roc_pr({"validation": (y, s), "test": (yt, st)}, thresholds=[0.5])
    ax_roc, ax_pr = fig.axes
    assert len(ax_roc.get_lines()) == 2 + 2 + 1  # curves, stars, diagonal
    assert "AUC = " in ax_roc.get_legend().get_texts()[0].get_text()
    star = [ln for ln in ax_roc.get_lines() if ln.get_marker() == "*"][0]
    fpr, tpr = star.get_xdata()[0], star.get_ydata()[0]
    sel = s >= 0.5
    assert fpr == pytest.approx((sel & (y == 0)).sum() / (y == 0).sum())
    assert tpr == pytest.approx((sel & (y == 1)).sum() / (y == 1).sum())
    star = [ln for ln in ax_pr.get_lines() if ln.get_marker() == "*"][0]
    assert star.get_ydata()[0] == pytest.approx(M.precision_at(y, s, 0.5))
    fig1 = M.plot_roc(y, s)
    assert fig1.axes[0].get_xlabel() == "False positive rate"
    import matplotlib.pyplot as plt

    plt.close("all")
