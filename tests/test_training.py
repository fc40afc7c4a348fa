"""Training: learning a toy task, resuming after a kill, presets, logs, the command line."""

import json

import numpy as np
import pytest
import torch

from clusterlens.cli import main
from clusterlens.datasets import write_toy_dataset
from clusterlens.errors import ParameterError
from clusterlens.nets import (
    PRESETS,
    CheckpointError,
    Trainer,
    TrainingConfig,
    load_checkpoint,
)

# One thread: on a shared 2-core machine a 2-thread OpenMP team stalls whenever one of its
# threads is descheduled (measured: steps 10-100x slower under load).
torch.set_num_threads(1)
# A narrow ResNet-18 (same layout, 1/8 of the channels) on 32 x 32 toy cutouts keeps the
# tests fast; the full network is checked in test_nets.py.
NARROW = {"widths": [16, 32, 64, 128]}
TINY = {"widths": [8, 16, 32, 64]}


def _config(**overrides):
    base = dict(
        network="resnet18",
        network_options=NARROW,
        epochs=5,
        lr=3e-3,
        weight_decay=0.0,
        crop=None,
        batch_size=16,
        max_shift=2,
        progress=False,
        seed=0,
    )
    return TrainingConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """320 toy cutouts 32 x 32: arcs at 8 sigma peak (even indices) or none."""
    ds = write_toy_dataset(tmp_path_factory.mktemp("toy") / "ds", 320, size=32, arc_snr=8.0)
    return ds.split(0.25, seed=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """64 toy cutouts (48 training, 16 validation) for the mechanics tests."""
    ds = write_toy_dataset(tmp_path_factory.mktemp("tiny") / "ds", 64, size=32, arc_snr=8.0)
    return ds.split(0.25, seed=0)


def test_presets_are_the_papers():
    case1, case2 = TrainingConfig.preset("case1"), TrainingConfig.preset("case2", epochs=3)
    assert (case1.optimizer, case1.batch_size, case1.lr, case1.weight_decay) == (
        "adam",
        32,
        3e-6,
        0.1,
    )
    assert case1.lr_final is None
    assert (case2.lr, case2.lr_final, case2.weight_decay, case2.epochs) == (1e-4, 1e-5, 0.01, 3)
    assert set(PRESETS) == {"case1", "case2", "cpu", "gpu"}
    gpu = TrainingConfig.preset("gpu")  # the paper's case 1, hardened
    assert (gpu.network, gpu.network_options, gpu.crop, gpu.epochs) == ("resnet18", {}, 223, 200)
    assert (gpu.lr, gpu.weight_decay, gpu.batch_size) == (case1.lr, case1.weight_decay, 32)
    cpu = TrainingConfig.preset("cpu")
    assert cpu.crop * 0.262 >= 32 and cpu.optimizer == "adamw" and cpu.warmup_epochs > 0
    with pytest.raises(ParameterError, match="'preset' must be one of"):
        TrainingConfig.preset("case3")
    with pytest.raises(ParameterError, match="'lr' parameter of TrainingConfig"):
        TrainingConfig(lr=-1.0)
    with pytest.raises(ParameterError, match="'batch_size'"):
        TrainingConfig(batch_size=0)


def test_short_training_run_learns_the_toy_arcs(toy, tmp_path):
    train, val = toy
    trainer = Trainer(_config(), out=tmp_path / "run").fit(train, val)
    assert trainer is not None and len(trainer.history_) == 5
    # Measured: validation AUC 0.61, 0.57, 0.81, 0.97, 0.999 over the 5 epochs (seed 0).
    assert trainer.best_auc_ > 0.9
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {
        "last.pt",
        "best.pt",
        "metrics.csv",
        "metrics.json",
        "config.json",
        "training.png",
    } <= files
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    best = load_checkpoint(tmp_path / "run" / "best.pt", network="resnet18")
    assert best.epoch == trainer.best_epoch_
    # the best checkpoint scores the validation set with the AUC it was kept for
    from clusterlens.metrics import roc_auc

    images = np.stack([val[k][0] for k in range(len(val))])
    assert roc_auc(val.view_labels, best.predict(images)) == pytest.approx(trainer.best_auc_)
    with pytest.raises(ParameterError, match="already holds a training run"):
        Trainer(_config(), out=tmp_path / "run").fit(train, val)


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_does(tiny, tmp_path, monkeypatch):
    train, val = tiny
    # cosine schedule and augmentation on, so that scheduler and RNG state matter
    config = _config(epochs=3, lr_final=1e-4, batch_size=8, network_options=TINY)
    whole = Trainer(config, out=tmp_path / "whole").fit(train, val)

    calls = {"n": 0}
    original = Trainer._step

    def killed_mid_epoch_two(self, *args):
        calls["n"] += 1
        if calls["n"] == 9:  # 6 steps per epoch: this is in the middle of epoch 2
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_step", killed_mid_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, out=tmp_path / "killed").fit(train, val)
    monkeypatch.setattr(Trainer, "_step", original)
    assert load_checkpoint(tmp_path / "killed" / "last.pt").epoch == 1

    resumed = Trainer(config, out=tmp_path / "killed", resume=True).fit(train, val)
    assert [h["val_auc"] for h in resumed.history_] == [h["val_auc"] for h in whole.history_]
    for key, value in whole.model_.state_dict().items():
        assert torch.equal(resumed.model_.state_dict()[key], value), key
    # a different configuration cannot resume the run
    with pytest.raises(CheckpointError, match="differs in \\['lr'\\]"):
        Trainer(
            _config(epochs=3, lr=1e-3, lr_final=1e-4, batch_size=8, network_options=TINY),
            out=tmp_path / "killed",
            resume=True,
        ).fit(train, val)


def test_early_stopping_and_bad_inputs(tiny, tmp_path):
    train, val = tiny
    trainer = Trainer(
        _config(epochs=10, lr=1e-7, network_options=TINY, early_stopping_patience=1, min_delta=0.5),
        out=tmp_path / "stop",
    ).fit(train, val)
    assert trainer.stopped_early_ and len(trainer.history_) == 2
    with pytest.raises(ParameterError, match="'train' parameter of Trainer.fit"):
        Trainer(_config(), out=tmp_path / "x").fit(np.zeros(3), val)
    only_lenses = val.subset(val.indices[val.view_labels == 1])
    with pytest.raises(ParameterError, match="both lenses and non-lenses"):
        Trainer(_config(), out=tmp_path / "x").fit(train, only_lenses)
    with pytest.raises(ParameterError, match="'size' parameter of center_crop"):
        Trainer(_config(crop=64), out=tmp_path / "x").fit(train, val)


def test_command_line_trains_and_resumes(tiny, tmp_path, capsys):
    data = str(tiny[0].path)
    args = [
        "train",
        "--data",
        data,
        "--preset",
        "case2",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "cli"),
        "--network",
        "convnext-nano",
        "--network-options",
        '{"widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1]}',
        "--val-fraction",
        "0.25",
        "--crop",
        "0",
        "--quiet",
        "--batch-size",
        "64",
        "--threads",
        "1",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and 0 <= summary["best_val_auc"] <= 1
    assert main(args) == 2  # exists, no --resume
    assert "already holds a training run" in capsys.readouterr().err
    args[args.index("1")] = "2"
    assert main([*args, "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epochs"] == 2


def test_loader_workers_do_not_change_the_result(tiny, tmp_path):
    train, val = tiny
    runs = [
        Trainer(_config(epochs=1, network_options=TINY, num_workers=n), out=tmp_path / str(n))
        .fit(train, val)
        .model_.state_dict()
        for n in (0, 2)
    ]
    for key, value in runs[0].items():
        assert torch.equal(runs[1][key], value), key


# -- issue 15: bad data and changed resumes are named, not tracebacks --------------------------


def _corrupt(dataset_path, index, *, delete=False):
    chunk = dataset_path / "images" / "c" / str(index) / "0" / "0" / "0"
    if delete:
        chunk.unlink()
    else:
        chunk.write_bytes(b"\x28\xb5\x2f\xfd not a zstd frame")


def test_a_corrupt_or_missing_chunk_names_the_image(tmp_path, capsys):
    ds = write_toy_dataset(tmp_path / "toy", 8, size=32, seed=4)
    _corrupt(ds.path, 3)
    _corrupt(ds.path, 5, delete=True)
    from clusterlens.datasets import DatasetError, LensDataset

    fresh = LensDataset(ds.path)
    with pytest.raises(DatasetError, match="Image 3 .*cannot be read"):
        fresh[3]
    with pytest.raises(DatasetError, match="Image 5 .*NaN"):
        fresh[5]
    args = ["train", "--data", str(ds.path), "--preset", "case2", "--epochs", "1"]
    args += ["--out", str(tmp_path / "run"), "--crop", "0", "--quiet", "--threads", "1"]
    args += ["--network-options", '{"widths": [4, 8, 8, 8]}', "--val-fraction", "0.25"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("Image 3" in err or "Image 5" in err)


def test_unknown_network_options_and_changed_resumes_are_refused(tiny, tmp_path, capsys):
    data = str(tiny[0].path)
    base = ["train", "--data", data, "--preset", "case2", "--epochs", "1", "--crop", "0"]
    base += ["--out", str(tmp_path / "run"), "--quiet", "--threads", "1", "--batch-size", "64"]
    base += ["--network", "convnext-nano"]
    opts = ["--network-options", '{"widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1]}']
    assert main(base + ["--network-options", '{"widht": [8, 16, 32, 64]}']) == 2
    err = capsys.readouterr().err
    assert "'widht'" in err and "widths" in err and "Traceback" not in err
    assert main(base + opts + ["--val-fraction", "0.25"]) == 0
    capsys.readouterr()
    resumed = base + opts + ["--val-fraction", "0.4", "--resume"]
    resumed[resumed.index("1")] = "2"
    assert main(resumed) == 2
    assert "other data" in capsys.readouterr().err


def test_scorer_predict_refuses_non_numeric_images(tiny, tmp_path):
    from clusterlens.nets.scoring import Scorer, ScoringError

    cfg = _config(epochs=1, network_options=TINY, crop=32)
    Trainer(cfg, out=tmp_path / "r").fit(*tiny)
    with pytest.raises(ScoringError, match="numeric"):
        Scorer(tmp_path / "r" / "best.pt").predict([["a", "b"]])
