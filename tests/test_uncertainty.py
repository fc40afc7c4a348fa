"""Predictive uncertainty (MC dropout, ensembles) and the simulated comparison of strategies."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clusterlens.datasets import write_toy_dataset
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop.networks import NetworkScorer
from clusterlens.loop.selection import bald
from clusterlens.loop.simulated_search import (
    DatasetCutouts,
    compare_selection,
    survey_positions,
)
from clusterlens.nets import AsinhStretch, get_network, save_checkpoint
from clusterlens.nets.scoring import Scorer, ScoringConfig
from clusterlens.nets.training import TrainingConfig
from clusterlens.nets.uncertainty import (
    EnsembleTrainer,
    has_dropout,
    mc_dropout,
    read_ensemble,
    write_ensemble,
)

torch.set_num_threads(1)  # see test_training.py: 2-thread teams stall on the shared machine
TINY = {"widths": [8, 16, 32, 64]}
SIZE = 32


def _checkpoint(path, *, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    model = get_network("resnet18", dropout=dropout, **TINY)
    with torch.no_grad():  # non-trivial batch-norm statistics, so scores spread out
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(path, model, transform=AsinhStretch(), config={"crop": SIZE})


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("survey") / "ds", 24, size=SIZE, seed=3)


def _images(survey):
    return np.stack([survey[i][0] for i in range(len(survey))]).astype(np.float32)


def test_dropout_option_keeps_the_papers_network():
    plain, dropped = get_network("resnet18"), get_network("resnet18", dropout=0.3)
    n_params = sum(p.numel() for p in plain.parameters())
    assert n_params == 11_177_538  # torchvision's resnet18(num_classes=2)
    assert sum(p.numel() for p in dropped.parameters()) == n_params
    assert isinstance(plain.head, torch.nn.Linear) and not has_dropout(plain)
    assert has_dropout(dropped) and dropped.clusterlens_network["options"]["dropout"] == 0.3
    assert has_dropout(get_network("convnext-nano", dropout=0.2))
    with pytest.raises(ParameterError, match="'dropout' parameter of ResNet18"):
        get_network("resnet18", dropout=1.0)


def test_mc_dropout_keeps_batch_norm_in_eval_and_restores_flags():
    model = get_network("resnet18", dropout=0.5, **TINY).train()
    with mc_dropout(model):
        assert model.head[0].training
        assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert all(m.training for m in model.modules())


def test_samples_differ_with_dropout_and_are_reproducible(tmp_path, survey):
    scorer = Scorer(_checkpoint(tmp_path / "m.pt", dropout=0.5), progress=False, batch_size=10)
    images = _images(survey)
    state = torch.random.get_rng_state()
    samples = scorer.predict_samples(images, 8, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())  # global state left alone
    assert samples.shape == (8, len(images)) and ((samples > 0) & (samples < 1)).all()
    assert np.ptp(samples, axis=0).min() > 0  # every object's draws differ
    assert bald(samples).min() > 0
    np.testing.assert_array_equal(samples, scorer.predict_samples(images, 8, seed=1))
    assert not np.array_equal(samples, scorer.predict_samples(images, 8, seed=2))
    # Dropout scales kept units by 1/(1-p), so the mean draw is near the plain score.
    plain = scorer.predict(images)
    assert np.abs(samples.mean(axis=0) - plain).mean() < 0.5 * np.abs(samples - plain).mean()


def test_samples_without_dropout_equal_the_plain_score(tmp_path, survey):
    scorer = Scorer(_checkpoint(tmp_path / "m.pt"), progress=False)
    images = _images(survey)
    samples = scorer.predict_samples(images, 3)
    np.testing.assert_allclose(samples, np.broadcast_to(scorer.predict(images), (3, 24)), 0, 1e-12)
    np.testing.assert_array_equal(bald(samples), 0.0)
    with pytest.raises(ParameterError, match="'n_samples' parameter of Scorer.predict_samples"):
        scorer.predict_samples(images, 0)


def test_network_scorer_samples_and_default_path(tmp_path, survey):
    source, positions = DatasetCutouts(survey), survey_positions(survey)
    ids = list(positions["id"][::-1])  # any order
    model = _checkpoint(tmp_path / "m.pt", dropout=0.5)
    cfg = ScoringConfig(progress=False, batch_size=16)
    plain = NetworkScorer(source, positions, tmp_path / "w", config=cfg).score(model, ids)
    assert plain.shape == (24,)
    direct = Scorer(model, cfg).predict(_images(survey)[[int(i) for i in ids]])
    np.testing.assert_allclose(plain, direct, rtol=1e-9)
    sampler = NetworkScorer(source, positions, tmp_path / "w", config=cfg, n_samples=6)
    samples = sampler.score(model, ids)
    assert samples.shape == (6, 24) and bald(samples).min() > 0
    assert len(list((tmp_path / "w").glob("samples-*.npy"))) == 1
    np.testing.assert_array_equal(sampler.score(model, ids), samples)  # read back
    with pytest.raises(ParameterError, match="'n_samples' parameter of NetworkScorer"):
        NetworkScorer(source, positions, n_samples=0)
    no_dropout = _checkpoint(tmp_path / "plain.pt")
    with pytest.raises(ParameterError, match="needs a network built with dropout"):
        NetworkScorer(source, positions, config=cfg, n_samples=4).score(no_dropout, ids)


def test_ensemble_of_identical_members_has_zero_bald(tmp_path, survey):
    source, positions = DatasetCutouts(survey), survey_positions(survey)
    ids = list(positions["id"])
    a = _checkpoint(tmp_path / "a.pt", seed=0)
    b = tmp_path / "b.pt"
    b.write_bytes(a.read_bytes())
    _checkpoint(tmp_path / "c.pt", seed=1)  # read through the manifest, by relative path
    scorer = NetworkScorer(source, positions, config=ScoringConfig(progress=False))
    same = scorer.score(write_ensemble(tmp_path / "same.json", [a, b]), ids)
    assert same.shape == (2, 24)
    np.testing.assert_array_equal(same[0], same[1])
    np.testing.assert_array_equal(bald(same), 0.0)
    mixed = scorer.score(write_ensemble(tmp_path / "mixed.json", ["a.pt", "c.pt"]), ids)
    assert bald(mixed).max() > 0  # relative member paths are read beside the manifest
    assert read_ensemble(a) is None
    (tmp_path / "other.json").write_text(json.dumps({"members": [str(a)]}))
    with pytest.raises(ClusterlensError, match="not an ensemble manifest"):
        read_ensemble(tmp_path / "other.json")
    with pytest.raises(ParameterError, match="at least 2 checkpoints"):
        write_ensemble(tmp_path / "one.json", [a])


def test_ensemble_trainer_trains_every_member(tmp_path):
    class Fake:
        def __init__(self, name):
            self.name, self.calls = name, []

        def train(self, positives, negatives, previous_model):
            self.calls.append((list(positives), list(negatives), previous_model))
            path = tmp_path / f"{self.name}-{len(self.calls)}.pt"
            path.write_bytes(b"x")
            return str(path)

    members = [Fake("a"), Fake("b")]
    trainer = EnsembleTrainer(members, tmp_path / "ens")
    first = trainer.train(["1"], [], None)
    assert [p.name for p in read_ensemble(first)] == ["a-1.pt", "b-1.pt"]
    second = trainer.train(["1", "2"], ["3"], first)
    assert members[1].calls[1] == (["1", "2"], ["3"], str(tmp_path / "b-1.pt"))
    assert read_ensemble(second)[0].name == "a-2.pt"
    with pytest.raises(ParameterError, match="at least 2"):
        EnsembleTrainer(members[:1], tmp_path)


def test_compare_selection_runs_the_loop_with_real_networks(tmp_path):
    base = write_toy_dataset(tmp_path / "base", 64, size=SIZE, arc_snr=8.0, seed=1)
    full = write_toy_dataset(tmp_path / "full", 80, size=SIZE, arc_snr=6.0, seed=2)
    labels = np.asarray(full.view_labels)
    survey = full.subset(
        np.sort(np.r_[np.flatnonzero(labels == 1)[:8], np.flatnonzero(labels == 0)])
    )
    config = TrainingConfig(
        network="resnet18",
        network_options={**TINY, "dropout": 0.3},
        epochs=2,
        lr=3e-3,
        weight_decay=0.0,
        crop=None,
        batch_size=16,
        progress=False,
    )
    table = compare_selection(
        base, survey, tmp_path / "work", config, strategies=("top_k", "bald"), k=8, n_iterations=2
    )
    assert list(table["strategy"]) == ["top_k", "top_k", "bald", "bald"]
    assert list(table["inspected"]) == [8, 16, 8, 16]
    assert (table["lenses_found"] <= table["inspected"]).all()
    assert (table["lenses_in_survey"] == 8).all()
    # Both strategies start from the same first model (the training run is shared).
    assert len(list((tmp_path / "work" / "train").glob("train-*"))) <= 3
    with pytest.raises(ParameterError, match="'strategies' parameter of compare_selection"):
        compare_selection(base, survey, tmp_path / "x", config, strategies=("random",))


def test_search_project_mixes_top_score_and_bald(tmp_path):
    from clusterlens.loop import Bald, SearchProject

    ids = [str(i) for i in range(6)]
    project = SearchProject.create(tmp_path / "p.sqlite", {"id": ids})
    # object 0: high, agreeing; 1: high, less; 2-3: disagreeing (high BALD); 4-5 low, agreeing
    samples = np.array(
        [[0.99, 0.9, 0.95, 0.05, 0.01, 0.02], [0.99, 0.9, 0.05, 0.95, 0.01, 0.02]], dtype=float
    )
    number = project.record_iteration(None, ids, samples, Bald(2, mix=0.5))
    assert sorted(project.selected(number)) == ["0", "2"]  # top mean score, then top BALD
    project.close()
