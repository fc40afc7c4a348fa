"""A training run's bookkeeping on disk: resuming from ``last.pt`` and the per-epoch metrics
(see :mod:`clusterlens.nets.training`).

A run resumes only with the configuration and the data it was started with (the options in
``_RESUMABLE_CHANGES`` aside, which do not change the result on CPU); the saved weights,
optimiser, schedule, loss scaler, history and generator states then put it exactly where the
killed run stopped.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from clusterlens._io import atomic_path, atomic_write_text
from clusterlens.errors import ParameterError
from clusterlens.nets._training_config import TrainingConfig
from clusterlens.nets.checkpoint import CheckpointError, load_checkpoint, restore_rng_state

# Options that may change when a run is resumed (they do not change the result on CPU).
_RESUMABLE_CHANGES = {
    "epochs",
    "device",
    "num_workers",
    "threads",
    "progress",
    "early_stopping_patience",
    "calibrate",
}


def data_record(train, val) -> dict:
    """What a run was trained and validated on: each set's dataset folder and a checksum of
    its image indices (a resumed run must see the same images)."""

    def one(ds):
        idx = np.ascontiguousarray(np.asarray(ds.indices, dtype=np.int64))
        return f"{Path(ds.path).resolve()}#{hashlib.sha256(idx.tobytes()).hexdigest()[:16]}"

    return {"train": one(train), "val": one(val)}


def saved_run_state(out: Path, cfg: TrainingConfig, train, val, *, resume: bool) -> dict | None:
    """The state saved in ``out/last.pt``, checked against this run; None when there is none.

    Raises :class:`~clusterlens.errors.ParameterError` when ``out`` holds a run and
    ``resume`` is off, and :class:`~clusterlens.nets.checkpoint.CheckpointError` when the
    saved run had another configuration or other data.
    """
    last = out / "last.pt"
    if not last.exists():
        return None
    if not resume:
        raise ParameterError(
            f"{out} already holds a training run (last.pt). Pass resume=True "
            "(--resume) to continue it, or choose another output directory."
        )
    state = load_checkpoint(last, map_location="cpu").state
    saved = TrainingConfig.from_dict(state["config"])
    changed = {
        f.name for f in fields(TrainingConfig) if getattr(saved, f.name) != getattr(cfg, f.name)
    } - _RESUMABLE_CHANGES
    if changed:
        raise CheckpointError(
            f"Cannot resume {last}: the configuration differs in {sorted(changed)}. "
            "Resume with the configuration of the run (see config.json)."
        )
    before = state.get("extra", {}).get("data")
    now = data_record(train, val)
    moved = sorted(k for k in now if before is not None and before.get(k) != now[k])
    if moved:
        raise CheckpointError(
            f"Cannot resume {last}: it was trained on other data ({', '.join(moved)} "
            f"changed: was {[before.get(k) for k in moved]}, now "
            f"{[now[k] for k in moved]}). Resume with the run's --data, --val or "
            "--val-fraction, or choose another output directory."
        )
    return state


def restore_run_state(state, model, ema, optimizer, scheduler, scaler) -> tuple[list[dict], int]:
    """Load a saved state into the run's objects; returns its history and the epochs done.

    The raw weights go into ``model`` (the saved ``state_dict`` is their average when the run
    keeps one, ``ema``); the generator states are restored last.
    """
    target = getattr(model, "_orig_mod", model)
    raw = state.get("extra", {}).get("train_state_dict")
    target.load_state_dict(raw if raw is not None else state["state_dict"])
    if ema is not None:
        ema.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    history = list(state["history"])
    start = int(state["epoch"])
    restore_rng_state(state["rng"])
    return history, start


def write_metrics(out: Path, history: list[dict]) -> None:
    """``metrics.json`` and ``metrics.csv``: one record per epoch, each written atomically."""
    atomic_write_text(out / "metrics.json", json.dumps(history, indent=1))
    with atomic_path(out / "metrics.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
