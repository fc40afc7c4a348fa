"""The generalisation benchmark: the independent (lenstronomy) simulator and the figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("lenstronomy")

from benchmarks import bench_generalisation as bench  # noqa: E402
from benchmarks import independent_sim as isim  # noqa: E402
from clusterlens.datasets import LensDataset, write_toy_dataset  # noqa: E402


@pytest.fixture(scope="module")
def simulator():
    return isim.IndependentSimulator()


def test_independent_dataset_is_a_valid_reproducible_clusterlens_dataset(tmp_path, simulator):
    ds = isim.write_independent_dataset(tmp_path / "a", 2, seed=3)
    again = LensDataset(tmp_path / "a")
    assert again.image_shape == (3, 223, 223) and again.bands == ("g", "r", "z")
    assert again.pixel_scale == pytest.approx(0.262)
    assert again.images.dtype == np.float32
    assert list(again.view_labels) == [1, 0]
    for name in ("z_lens", "z_source", "log_m200", "einstein_radius", "psf_fwhm_r", "arc_snr"):
        assert name in again.params.colnames
    assert again.params["arc_snr"][0] >= isim.IndependentSimConfig().min_arc_snr
    assert again.params["einstein_radius"][1] >= isim.IndependentSimConfig().min_einstein_radius
    image, label = again[0]
    assert image.shape == (3, 223, 223) and np.isfinite(image).all() and label == 1
    # image i of seed s depends on (s, i) alone
    # (stored as integers of 1/8 of the noise: within half a step of the simulated image)
    half_step = 0.5 * ds.images.step[1][:, None, None] * (1 + 1e-6)
    assert np.all(np.abs(simulator.simulate(3, 1, 0)["image"] - ds.images[1]) <= half_step)
    assert not np.array_equal(simulator.simulate(4, 1, 0)["image"], ds.images[1])


def test_a_positive_differs_from_its_counterpart_by_a_visible_arc(simulator):
    pos = simulator.simulate(11, 0, 1)
    neg = simulator.simulate(11, 0, 1, with_arc=False)
    arc, sigma = pos["arc"].astype(float), pos["sigma"].astype(float)
    assert not neg["arc"].any()
    assert isim.arc_aperture_snr(arc, sigma) >= 10.0
    diff = pos["image"].astype(float) - neg["image"]
    # same cluster, conditions and noise draw: away from the arc the images agree (the arc's
    # shot noise changes only the pixels it lights)
    far = arc < 1e-6 * sigma
    assert np.abs(diff[far]).max() < 1e-3 * sigma[far].min()
    # the difference holds the arc at its S/N: project it on the arc template
    w = arc / sigma**2
    measured = (diff * w).sum() / math.sqrt((arc * w).sum())
    assert measured > 8.0


def test_negatives_have_no_arc_and_a_lens_capable_cluster(simulator):
    out = simulator.simulate(5, 7, 0)
    assert not out["arc"].any()
    assert "arc_snr" not in out["params"]
    assert out["params"]["einstein_radius"] >= simulator.config.min_einstein_radius


def test_noise_follows_the_depth_through_lenstronomy(simulator):
    cond = simulator._conditions(np.random.default_rng(0))
    for band in cond["bands"]:
        psf = band["kernel"]
        flux_sigma = band["band"].background_noise / math.sqrt((psf**2).sum())
        f5 = 10 ** ((22.5 - band["depth"]) / 2.5)
        assert 5 * flux_sigma == pytest.approx(f5, rel=1e-6)


def test_moffat_kernel_is_normalised_with_the_requested_fwhm():
    k = isim.moffat_kernel(1.3, 3.0, 0.02, half=150, sub=3)
    assert k.sum() == pytest.approx(1.0)
    row = k[150]
    above = np.flatnonzero(row >= 0.5 * row.max())
    assert (above[-1] - above[0] + 1) * 0.02 == pytest.approx(1.3, abs=0.03)


def test_arc_aperture_snr_hand_made_case():
    arc = np.zeros((3, 8, 8))
    arc[:, 2, :5] = 1.0  # 5 pixels per band at 1 sigma, above the half-sigma cut
    arc[:, 5, 0] = 0.2  # below the cut: ignored
    sigma = np.ones_like(arc)
    assert isim.arc_aperture_snr(arc, sigma) == pytest.approx(math.sqrt(3 * 5))


def test_figures_hand_made_case_against_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(20, int), np.zeros(40, int)]
    scores = np.r_[rng.uniform(0.3, 1.0, 20), rng.uniform(0.0, 0.8, 40)]
    scores[0], scores[1] = 0.999, 0.995  # two lenses above the paper's threshold
    scores[20] = 0.992  # one non-lens above it too
    f = bench.figures(scores, labels)
    assert f["auc"] == pytest.approx(roc_auc_score(labels, scores))
    neg_sorted = np.sort(scores[labels == 0])[::-1]
    assert f["tpr0"] == pytest.approx((scores[labels == 1] > neg_sorted[0]).mean())
    assert f["tpr10"] == pytest.approx((scores[labels == 1] > neg_sorted[9]).mean())
    assert f["purity"] == pytest.approx(2 / 3) and f["completeness"] == pytest.approx(2 / 20)
    assert f["fp_fraction"] == pytest.approx(1 / 40)
    assert f["fp_fraction_05"] == pytest.approx((scores[labels == 0] >= 0.5).mean())
    assert (f["n_images"], f["n_lenses"], f["n_non_lenses"]) == (60, 20, 40)
    table = bench.markdown_table({"a": f, "b": f})
    assert "| AUC |" in table and table.count("\n") == 9


def test_harder_config_worsens_seeing_and_depth():
    from clusterlens.mock import MockConfig

    base, hard = MockConfig().observation, bench.harder_config().observation
    a, b = base.draw(3), hard.draw(3)  # the same field's conditions, worsened
    np.testing.assert_allclose(b.psf_fwhm, np.add(a.psf_fwhm, bench.HARDER_SEEING))
    np.testing.assert_allclose(b.depth, np.add(a.depth, bench.HARDER_DEPTH))
    assert hard.max_fwhm == pytest.approx(base.max_fwhm + bench.HARDER_SEEING)
    assert bench.harder_config().sky.confuser_rate > MockConfig().sky.confuser_rate


@pytest.mark.torch
def test_train_recipe_and_score_on_a_tiny_set(tmp_path):
    pytest.importorskip("torch")
    train = write_toy_dataset(tmp_path / "toy", 8, size=223, arc_snr=5.0, seed=1)
    model, trainer = bench.train_recipe(train, tmp_path / "model", quick=True)
    assert model.exists() and len(trainer.history_) == bench.SIZES["quick"][2]
    few = train.subset(train.indices[:3])
    scores = bench.score(model, few, batch=2)
    assert scores.shape == (3,) and ((scores >= 0) & (scores <= 1)).all()
    # a second seed is another network; the committee of both scores their mean probability
    other, _ = bench.train_recipe(train, tmp_path / "model-1", quick=True, seed=1)
    from clusterlens.nets.committee import write_committee

    committee = write_committee(tmp_path / "c.json", [model, other]).path
    members = [bench.score(m, few, batch=2, symmetries=2) for m in (model, other)]
    assert not np.allclose(members[0], members[1])
    np.testing.assert_allclose(
        bench.score(committee, few, batch=2, symmetries=2), np.mean(members, axis=0), rtol=1e-6
    )


@pytest.mark.torch
def test_train_recipe_mines_a_negative_pool(tmp_path):
    pytest.importorskip("torch")
    train = write_toy_dataset(tmp_path / "toy", 8, size=223, arc_snr=5.0, seed=1)
    pool = write_toy_dataset(tmp_path / "pool", 16, size=223, arc_snr=5.0, seed=2)
    negatives = pool.subset(pool.indices[pool.view_labels == 0])
    _, trainer = bench.train_recipe(
        train, tmp_path / "model", quick=True, epochs=2, negative_pool=negatives
    )
    # two epochs: mined once, after the first, an eighth of the pool
    assert trainer.config.hard_negative_rounds == 3 and trainer.config.hard_negative_every == 1
    assert [len(r) for r in trainer.hard_negatives_] == [len(negatives) // 8]
    assert set(trainer.hard_negatives_[0]) <= set(negatives.indices.tolist())


@pytest.mark.slow
def test_quick_benchmark_end_to_end(tmp_path):
    import json

    bench.main(["--quick", "--out", str(tmp_path), "--threads", "1"])
    doc = json.loads((tmp_path / "generalisation.json").read_text())
    assert set(doc["sets"]) == set(bench.SET_NAMES)
    for figures in doc["sets"].values():
        assert figures["n_images"] == bench.SIZES["quick"][1]
        assert 0.0 <= figures["auc"] <= 1.0
    assert (tmp_path / "roc.png").stat().st_size > 0
