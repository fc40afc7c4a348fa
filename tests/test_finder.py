"""A finder that generalises: robust input scaling, sky augmentations, hard negatives,
committees, calibration, the hardened training recipe and ``clusterlens evaluate``."""

import json

import numpy as np
import pytest
import torch

from clusterlens.cli import main
from clusterlens.datasets import write_toy_dataset
from clusterlens.errors import ParameterError
from clusterlens.metrics import expected_calibration_error
from clusterlens.nets import (
    AsinhStretch,
    CheckpointError,
    Committee,
    RobustAsinhStretch,
    SkyAugmentation,
    Trainer,
    TrainingConfig,
    calibrate_checkpoint,
    evaluate,
    evaluate_many,
    fit_temperature,
    format_reports,
    get_network,
    load_checkpoint,
    load_model,
    mine_hard_negatives,
    save_checkpoint,
    transform_from_dict,
    write_committee,
)
from clusterlens.nets.calibration import binary_nll
from clusterlens.nets.committee import combine_logits, fit_logistic_combination
from clusterlens.nets.scoring import Scorer

torch.set_num_threads(1)
SIZE = 32
TINY = {"widths": [8, 16, 32, 64]}


def _images(n=6, size=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    noise = np.array([0.006, 0.011, 0.025], dtype=np.float32)[:, None, None]
    x = rng.normal(size=(n, 3, size, size)).astype(np.float32) * noise
    x[:, :, size // 2 - 2 : size // 2 + 2, size // 2 - 2 : size // 2 + 2] += 3.0
    return x


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    ds = write_toy_dataset(tmp_path_factory.mktemp("toy") / "ds", 48, size=SIZE, arc_snr=8.0)
    return ds


def _checkpoint(path, seed, transform=None, calibration=None):
    torch.manual_seed(seed)
    model = get_network("resnet18", **TINY).eval()
    return save_checkpoint(
        path,
        model,
        transform=transform or RobustAsinhStretch(),
        config={"crop": SIZE},
        calibration=calibration,
    )


# -- normalisation ------------------------------------------------------------------------------


def test_robust_stretch_ignores_flux_scale_and_sky_offset():
    t = RobustAsinhStretch()
    x = torch.from_numpy(_images())
    y = t(x)
    offset = torch.tensor([0.3, -1.0, 5.0])[:, None, None]
    for changed in (x * 0.37, x * 12.0, x + offset, 4.0 * x - offset):
        assert torch.allclose(t(changed), y, atol=2e-5)
    # the fixed stretch does key on the total light
    assert not torch.allclose(AsinhStretch()(x * 12.0), AsinhStretch()(x), atol=1e-2)
    # sky noise is about +-1/d; a blank plane gives finite values
    assert 0.2 < float(y[:, :, :4, :4].std()) < 0.5
    assert torch.isfinite(t(torch.zeros(1, 3, 16, 16))).all()
    with pytest.raises(ParameterError, match="inner_radius"):
        RobustAsinhStretch(inner_radius=1.5)


def test_robust_stretch_is_stored_and_old_transform_still_loads(tmp_path):
    t = RobustAsinhStretch(softening=2.0)
    assert transform_from_dict(t.to_dict()) == t
    path = _checkpoint(tmp_path / "m.pt", 0, transform=t)
    assert load_checkpoint(path).transform == t
    old = _checkpoint(tmp_path / "old.pt", 0, transform=AsinhStretch())
    assert isinstance(load_checkpoint(old).transform, AsinhStretch)
    assert TrainingConfig().transform["name"] == "robust-asinh"  # default of new runs


def test_robust_stretch_bins_before_it_scales_and_saves_the_binning(tmp_path):
    from clusterlens.nets.transforms import robust_background_noise

    t = RobustAsinhStretch(downsample=2)
    x = torch.from_numpy(_images(size=64))
    y = t(x)
    assert y.shape == (6, 3, 32, 32)
    binned = torch.nn.functional.avg_pool2d(x, 2)
    assert torch.allclose(y, RobustAsinhStretch()(binned))
    # four pixels averaged: white noise halves, so the stretch sees the binned noise
    noise = robust_background_noise(x)[1].flatten()
    assert torch.allclose(robust_background_noise(binned)[1].flatten(), noise / 2, rtol=0.15)
    assert 0.2 < float(y[:, :, :3, :3].std()) < 0.5
    assert RobustAsinhStretch(downsample=3)(x).shape[-1] == 21  # the last row is dropped
    # saved as version 2; downsample=1 still writes version 1 (older readers load it)
    spec = t.to_dict()
    assert (spec["version"], spec["downsample"]) == (2, 2)
    assert transform_from_dict(spec) == t
    assert "downsample" not in RobustAsinhStretch().to_dict()
    assert RobustAsinhStretch().to_dict()["version"] == 1
    path = _checkpoint(tmp_path / "m.pt", 0, transform=t)
    assert load_checkpoint(path).transform == t
    scorer = Scorer(path, progress=False, device="cpu")
    assert scorer.predict(_images(4, size=SIZE)).shape == (4,)
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ParameterError, match="'downsample'"):
            RobustAsinhStretch(downsample=bad)
    with pytest.raises(ParameterError, match="cannot bin"):
        RobustAsinhStretch(downsample=4)(torch.zeros(1, 3, 3, 3))
    binned = TrainingConfig.preset("cpu", crop=214, transform=t.to_dict())
    assert transform_from_dict(binned.transform) == t


# -- augmentations -------------------------------------------------------------------------------


def test_sky_augmentation_is_reproducible_and_keeps_shape_and_dtype():
    aug = SkyAugmentation(seed=3)
    x = torch.from_numpy(_images(8))
    a, b = aug(x, epoch=2, step=5), aug(x, epoch=2, step=5)
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    assert not torch.equal(a, aug(x, epoch=2, step=6))
    assert not torch.equal(a, x)
    assert SkyAugmentation.from_dict(aug.to_dict()) == aug
    # all off: the identity
    off = SkyAugmentation(psf_fwhm_arcsec=0, noise=0, flux_scale=(1, 1), colour_jitter=0,
                          background_offset=0)  # fmt: skip
    assert torch.equal(off(x), x)
    # the robust stretch absorbs flux scale, colour and offsets
    photometric = SkyAugmentation(psf_fwhm_arcsec=0, noise=0)
    t = RobustAsinhStretch()
    assert torch.allclose(t(photometric(x)), t(x), atol=5e-5)
    with pytest.raises(ParameterError, match="flux_scale"):
        SkyAugmentation(flux_scale=(2.0, 1.0))
    with pytest.raises(ParameterError, match="Unknown SkyAugmentation"):
        SkyAugmentation.from_dict({"blur": 1})


def test_the_augmentation_noise_agrees_with_the_full_measurement():
    from clusterlens.nets.augment import _augmentation_noise
    from clusterlens.nets.transforms import robust_background_noise

    x = torch.from_numpy(_images(8, size=128))  # the cpu recipe's crop
    fast, full = _augmentation_noise(x), robust_background_noise(x)[1]
    assert fast.shape == full.shape == (8, 3, 1, 1)
    assert torch.allclose(fast, full, rtol=0.06)
    # a pure-noise field of known sigma
    sky = torch.randn(4, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 0.02
    assert torch.allclose(_augmentation_noise(sky), torch.full((4, 3, 1, 1), 0.02), rtol=0.06)


def test_blur_widens_a_point_source_by_the_drawn_amount():
    from clusterlens.nets.augment import gaussian_blur

    x = torch.zeros(1, 1, 41, 41)
    x[0, 0, 20, 20] = 1.0
    y = gaussian_blur(x, torch.tensor([[2.0]]))[0, 0]
    grid = torch.arange(41.0) - 20
    var = float((y.sum(0) * grid**2).sum() / y.sum())
    assert var == pytest.approx(4.0, rel=0.02) and float(y.sum()) == pytest.approx(1.0)


# -- committees ----------------------------------------------------------------------------------


def test_committee_score_is_the_mean_of_its_members(tmp_path):
    paths = [_checkpoint(tmp_path / f"m{s}.pt", s) for s in range(3)]
    images = _images(5)
    members = np.stack([load_checkpoint(p).predict(images) for p in paths])
    committee = write_committee(tmp_path / "committee.json", paths)
    assert np.allclose(committee.predict(images), members.mean(0), atol=1e-12)
    # the scorer (and so the search loop) takes the manifest as one model
    scorer = Scorer(tmp_path / "committee.json", progress=False, device="cpu")
    assert np.allclose(scorer.predict(images), members.mean(0), atol=1e-6)
    assert isinstance(load_model(tmp_path / "committee.json"), Committee)
    # the search loop's NetworkScorer scores a committee as one model, not member by member
    from clusterlens.nets.uncertainty import read_ensemble

    assert read_ensemble(tmp_path / "committee.json") is None
    # extreme logits stay exact in log space
    z = np.array([[40.0, -40.0], [-40.0, 30.0]])
    p = 1 / (1 + np.exp(-combine_logits(z, {"kind": "mean"})))
    assert np.allclose(p, [0.5, 0.5])
    # a changed member is refused
    _checkpoint(paths[1], 7)
    with pytest.raises(CheckpointError, match="SHA-256"):
        Committee.load(tmp_path / "committee.json")
    with pytest.raises(ParameterError, match="at least 2"):
        Committee([paths[0]])


def test_logistic_combination_is_fitted_on_validation_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good = (2 * y - 1) * 1.0 + rng.normal(size=2000)
    useless = rng.normal(size=2000) * 3
    z = np.stack([useless, good])
    fitted = fit_logistic_combination(z, y, l2=1e-3)
    assert abs(fitted["weights"][0]) < 0.1 < 1.0 < fitted["weights"][1]
    # the same fit as scikit-learn's (an oracle): C = 1 / (2 n l2)
    sklearn = pytest.importorskip("sklearn.linear_model")
    oracle = sklearn.LogisticRegression(C=1 / (2 * 2000 * 1e-3), tol=1e-10).fit(z.T, y)
    assert np.allclose(fitted["weights"], oracle.coef_[0], atol=2e-3)
    assert fitted["bias"] == pytest.approx(oracle.intercept_[0], abs=2e-3)
    nll_fit = binary_nll(combine_logits(z, fitted), y)
    assert nll_fit < binary_nll(combine_logits(z, {"kind": "mean"}), y)
    assert nll_fit == pytest.approx(fitted["val_nll"], abs=1e-2)


def test_committee_manifest_with_learned_weights_round_trips(tmp_path, toy):
    paths = [_checkpoint(tmp_path / f"m{s}.pt", s) for s in range(2)]
    committee = write_committee(tmp_path / "c.json", paths, combination="logistic", val=toy)
    body = json.loads((tmp_path / "c.json").read_text())
    assert body["combination"]["kind"] == "logistic" and len(body["members"]) == 2
    assert all(len(m["sha256"]) == 64 for m in body["members"])
    again = Committee.load(tmp_path / "c.json")
    images = _images(4)
    assert np.allclose(again.predict(images), committee.predict(images))


# -- calibration ---------------------------------------------------------------------------------


def test_temperature_scaling_lowers_the_validation_nll():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    x = (2 * y - 1) * 1.0 + rng.normal(size=2000)  # two unit Gaussians: log-odds = 2 x
    overconfident = 8.0 * x  # 4 x the true log-odds
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(4.0, rel=0.1)
    assert binary_nll(overconfident / t, y) < binary_nll(overconfident, y)
    p_before, p_after = 1 / (1 + np.exp(-overconfident)), 1 / (1 + np.exp(-overconfident / t))
    assert expected_calibration_error(y, p_after) < expected_calibration_error(y, p_before)
    with pytest.raises(ParameterError, match="lenses and non-lenses"):
        fit_temperature([1.0, 2.0], [1, 1])


def test_calibrated_checkpoint_is_applied_by_the_scorer(tmp_path, toy):
    path = _checkpoint(tmp_path / "m.pt", 0)
    images = _images(4)
    raw = load_checkpoint(path).logits(images)
    report = calibrate_checkpoint(path, toy)
    assert report.nll_after <= report.nll_before + 1e-9
    loaded = load_checkpoint(path)
    assert loaded.temperature == pytest.approx(report.temperature)
    scorer = Scorer(path, progress=False, device="cpu")
    expected = 1 / (1 + np.exp(-raw / report.temperature))
    assert np.allclose(scorer.predict(images), expected, atol=1e-5)


# -- hard negatives ------------------------------------------------------------------------------


class _Brightness(torch.nn.Module):
    """A fake network whose lens logit is the mean pixel value."""

    def forward(self, x):
        m = x.mean((1, 2, 3))
        return torch.stack([torch.zeros_like(m), m], 1)


def test_hard_negative_mining_picks_the_top_scoring_negatives(toy):
    rng = np.random.default_rng(0)
    levels = rng.permutation(20).astype(np.float32)
    pool = np.ones((20, 3, 8, 8), np.float32) * levels[:, None, None, None]
    model = (_Brightness(), lambda x: x)
    picked = mine_hard_negatives(model, pool, 3)
    assert picked.tolist() == np.argsort(-levels)[:3].tolist()
    again = mine_hard_negatives(model, pool, 3, exclude=picked[:1])
    assert again.tolist() == np.argsort(-levels)[1:4].tolist()
    # from a dataset, its lenses are never returned
    picked = mine_hard_negatives(model, toy, 5)
    assert (toy.view_labels[picked] == 0).all() and len(set(picked.tolist())) == 5
    with pytest.raises(ParameterError, match="'n' parameter"):
        mine_hard_negatives(model, pool, 0)


# -- the recipe -----------------------------------------------------------------------------------


def _recipe(**overrides):
    base = dict(
        network_options=TINY,
        crop=None,
        epochs=3,
        batch_size=8,
        progress=False,
        max_shift=1,
    )
    return TrainingConfig.preset("cpu", **{**base, **overrides})


def test_hardened_recipe_with_hard_negatives_resumes_exactly(tmp_path, toy, monkeypatch):
    train, val = toy.split(0.33, seed=0)
    pool = write_toy_dataset(tmp_path / "pool", 16, size=SIZE, arc_snr=8.0, seed=5)
    config = _recipe(hard_negative_rounds=2, hard_negatives=3)
    whole = Trainer(config, out=tmp_path / "whole").fit(train, val, negative_pool=pool)
    assert [len(r) for r in whole.hard_negatives_] == [3, 3]
    added = [i for r in whole.hard_negatives_ for i in r]
    assert len(set(added)) == 6 and (pool.labels[added] == 0).all()
    assert whole.calibration_ is not None
    assert whole.calibration_.nll_after <= whole.calibration_.nll_before + 1e-9
    assert load_checkpoint(tmp_path / "whole" / "best.pt").temperature == pytest.approx(
        whole.calibration_.temperature
    )

    calls = {"n": 0}
    original = Trainer._step

    def killed_in_epoch_three(self, *args):
        calls["n"] += 1
        if calls["n"] == 9:  # epochs have 4 steps, then 4 + 1 with the added negatives
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_step", killed_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, out=tmp_path / "killed").fit(train, val, negative_pool=pool)
    monkeypatch.setattr(Trainer, "_step", original)
    resumed = Trainer(config, out=tmp_path / "killed", resume=True).fit(
        train, val, negative_pool=pool
    )
    assert resumed.hard_negatives_ == whole.hard_negatives_
    assert [h["val_auc"] for h in resumed.history_] == [h["val_auc"] for h in whole.history_]
    for key, value in whole.model_.state_dict().items():
        assert torch.equal(resumed.model_.state_dict()[key], value), key
    with pytest.raises(ParameterError, match="negative_pool"):
        Trainer(config, out=tmp_path / "x").fit(train, val)


def test_warmup_cosine_schedule():
    from clusterlens.nets.training import _warmup_cosine

    f = _warmup_cosine(_recipe(epochs=10, lr=1e-3, lr_final=1e-5, warmup_epochs=1.0), 10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(99) == pytest.approx(0.01, abs=1e-3)
    assert f(50) < f(20)
    with pytest.raises(ParameterError, match="ema_decay"):
        _recipe(ema_decay=1.5)


# -- evaluate ------------------------------------------------------------------------------------


def test_evaluate_function_and_command(tmp_path, toy, capsys):
    path = _checkpoint(tmp_path / "m.pt", 0)
    report = evaluate(path, toy, name="toy", device="cpu")
    assert report.n == len(toy) and report.n_lenses == int(toy.view_labels.sum())
    assert 0 <= report.auc <= 1 and report.threshold == 0.986
    images = np.stack([toy[k][0] for k in range(len(toy))])
    same = evaluate(path, (images, toy.view_labels), device="cpu")
    assert same.auc == pytest.approx(report.auc) and same.tpr10 == pytest.approx(report.tpr10)
    both = evaluate_many(str(path), {"a": toy, "b": (images, toy.view_labels)}, device="cpu")
    assert list(both) == ["a", "b"] and "TPR10" in format_reports(both)

    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(path), "--data", str(toy.path), "--out", str(out)]
    assert main([*argv, "--quiet", "--threshold", "0.5", "--device", "cpu"]) == 0
    figures = json.loads((out / "evaluation.json").read_text())
    assert figures["auc"] == pytest.approx(report.auc) and figures["threshold"] == 0.5
    assert (out / "roc_pr.png").stat().st_size > 1000 and (out / "scores.csv").is_file()
    assert "AUC" in capsys.readouterr().out
    for bad, word in (
        (["--threshold", "2"], "--threshold"),
        (["--model", str(tmp_path / "none.pt")], "--model"),
        (["--data", str(tmp_path)], "--data"),
    ):
        args = dict(zip(argv[1::2], argv[2::2], strict=True))
        args.update(dict(zip(bad[::2], bad[1::2], strict=True)))
        line = ["evaluate", *[v for kv in args.items() for v in kv]]
        assert main(line) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0]


def test_command_line_trains_the_cpu_recipe(tmp_path, toy, capsys):
    argv = ["train", "--data", str(toy.path), "--preset", "cpu", "--epochs", "1", "--crop", "0"]
    argv += ["--network-options", json.dumps(TINY), "--batch-size", "8", "--val-fraction", "0.3"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--quiet", "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and summary["temperature"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["transform"]["name"] == "robust-asinh" and config["sky_augmentation"]
    assert config["optimizer"] == "adamw" and config["ema_decay"] == 0.99
    assert main([*argv, "--out", str(tmp_path / "r2"), "--hard-negative-rounds", "1"]) == 2
    assert "--negative-pool" in capsys.readouterr().err


def test_ensemble_trainer_can_write_a_committee(tmp_path):
    from clusterlens.nets.uncertainty import EnsembleTrainer

    paths = [_checkpoint(tmp_path / f"m{s}.pt", s) for s in range(2)]
    seen = []

    class _Fixed:
        def __init__(self, path):
            self.path = path

        def train(self, positives, negatives, previous_model):
            seen.append(previous_model)
            return str(self.path)

    trainer = EnsembleTrainer([_Fixed(p) for p in paths], tmp_path / "work", committee=True)
    manifest = trainer.train([], [], None)
    assert isinstance(load_model(manifest), Committee)
    trainer.train([], [], manifest)  # the next round starts each member from its own model
    assert seen[2:] == [str(p.resolve()) for p in paths]
