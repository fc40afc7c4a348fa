"""Checkpoints: everything needed to score with a model or to resume its training.

A checkpoint is one file written with ``torch.save`` holding plain data only (tensors, numbers,
strings, lists and dicts), so it loads with ``torch.load(weights_only=True)`` and no code from
the file is ever executed.  It holds

* ``format``/``format_version``, ``clusterlens_version``;
* ``network``: the registry name and options the model was built with;
* ``state_dict``: the weights; ``transform``: the input transform (see
  :mod:`clusterlens.nets.transforms`);
* ``calibration`` (optional): the temperature fitted on a validation set
  (:mod:`clusterlens.nets.calibration`), applied to the logits by every scorer;
* for resuming: ``optimizer``, ``scheduler``, ``scaler`` states, ``epoch`` (the number of
  finished epochs), ``rng`` (torch, numpy and Python generator states), ``config`` and
  ``history`` (per-epoch metrics); ``extra`` for anything else.

Files are written to a temporary name and renamed, so a run killed while saving leaves the
previous checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clusterlens import __version__
from clusterlens._io import atomic_path
from clusterlens.errors import ClusterlensError
from clusterlens.nets.registry import get_network
from clusterlens.nets.transforms import InputTransform, transform_from_dict

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "LoadedCheckpoint",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "update_checkpoint",
]

CHECKPOINT_FORMAT = "clusterlens-checkpoint"
_FORMAT_VERSION = 1


class CheckpointError(ClusterlensError):
    """A checkpoint file is missing, corrupt, or does not fit the model asked for."""


def capture_rng_state() -> dict:
    """The states of torch's, numpy's global and Python's random generators, as plain data."""
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global state is saved on purpose)
    # Plain lists, not numpy arrays, so that the checkpoint loads with weights_only=True.
    numpy_state["state"] = {
        "key": numpy_state["state"]["key"].tolist(),
        "pos": int(numpy_state["state"]["pos"]),
    }
    state = {
        "torch": torch.get_rng_state(),
        "numpy": numpy_state,
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Restore generator states captured by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {
        "key": np.array(numpy_state["state"]["key"], dtype=np.uint32),
        "pos": numpy_state["state"]["pos"],
    }
    np.random.set_state(numpy_state)  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _network_spec(model: nn.Module) -> dict:
    spec = getattr(model, "clusterlens_network", None)
    if spec is None:
        raise CheckpointError(
            "The model has no 'clusterlens_network' attribute: build it with "
            "clusterlens.nets.get_network(name) so its checkpoint can rebuild it."
        )
    return spec


def save_checkpoint(
    path,
    model: nn.Module,
    *,
    transform: InputTransform,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    scaler=None,
    epoch: int = 0,
    history: list | None = None,
    config: dict | None = None,
    rng: dict | None = None,
    extra: dict | None = None,
    calibration: dict | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename) and return its path.

    Parameters
    ----------
    path : str or Path
        Destination file, conventionally ``*.pt``.
    model : torch.nn.Module
        A model built by :func:`~clusterlens.nets.get_network`.
    transform : InputTransform
        The input transform the model was trained with.
    optimizer, scheduler, scaler : optional
        Objects with ``state_dict()``, saved for resuming.
    epoch : int
        Number of finished epochs.
    history : list of dict
        Per-epoch metrics.
    config : dict
        The training configuration, as plain data.
    rng : dict
        Generator states (default: :func:`capture_rng_state` now).
    extra : dict
        Anything else (plain data).
    calibration : dict, optional
        ``{"temperature": T, ...}`` (see :func:`clusterlens.nets.calibration.fit_temperature`).
    """
    path = Path(path)
    model_to_save = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": _FORMAT_VERSION,
        "clusterlens_version": __version__,
        "torch_version": str(torch.__version__),
        "network": _network_spec(model_to_save),
        "state_dict": {k: v.detach().cpu() for k, v in model_to_save.state_dict().items()},
        "transform": transform.to_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "history": list(history or []),
        "config": dict(config or {}),
        "rng": rng if rng is not None else capture_rng_state(),
        "extra": dict(extra or {}),
    }
    if calibration is not None:
        state["calibration"] = dict(calibration)
    return _write_state(path, state)


def _write_state(path: Path, state: dict) -> Path:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def update_checkpoint(path, out=None, **entries) -> Path:
    """Rewrite a checkpoint with some top-level entries replaced (e.g. ``calibration``),
    atomically, to ``out`` (default: in place); returns the path written."""
    path = Path(path)
    state = _read(path, "cpu")
    state.update(entries)
    return _write_state(Path(out) if out is not None else path, state)


@dataclass
class LoadedCheckpoint:
    """What :func:`load_checkpoint` returns.

    Attributes
    ----------
    model : torch.nn.Module
        The rebuilt network with its weights, in eval mode, on ``map_location``.
    transform : InputTransform
        The input transform to apply to (batch, band, y, x) fluxes before ``model``.
    epoch : int
        Finished training epochs.
    history : list of dict
        Per-epoch metrics.
    state : dict
        The raw checkpoint (optimizer/scheduler/scaler/rng states, config, versions).
    """

    model: nn.Module
    transform: InputTransform
    epoch: int
    history: list = field(default_factory=list)
    state: dict = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        """The calibration temperature (1: uncalibrated); logits are divided by it."""
        return float((self.state.get("calibration") or {}).get("temperature", 1.0))

    @property
    def crop(self) -> int | None:
        """The side in pixels the network was trained on (None: unknown)."""
        crop = (self.state.get("config") or {}).get("crop")
        return None if crop is None else int(crop)

    @property
    def in_channels(self) -> int:
        """Number of bands the network takes."""
        return int(self.state["network"]["options"].get("in_channels", 3))

    def logits(self, images, *, calibrated: bool = True) -> np.ndarray:
        """Logit differences (lens minus non-lens), float64, divided by the calibration
        temperature unless ``calibrated=False``, for (batch, band, y, x) fluxes."""
        device = next(self.model.parameters()).device
        x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=device)
        with torch.inference_mode():
            logits = self.model(self.transform(x)).float()
        diff = (logits[:, 1] - logits[:, 0]).cpu().numpy().astype(np.float64)
        return diff / self.temperature if calibrated else diff

    def predict(self, images) -> np.ndarray:
        """Lens probabilities for a (batch, band, y, x) array of fluxes (nanomaggies),
        calibrated when the checkpoint holds a temperature."""
        from scipy.special import expit

        return expit(self.logits(images))


def _read(path: Path, map_location) -> dict:
    if not path.is_file():
        raise CheckpointError(f"No checkpoint file at {path}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # zip, pickle and torch errors of several private types
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise CheckpointError(
            f"The checkpoint {path} is corrupt or not a clusterlens checkpoint "
            f"({type(exc).__name__}: {first[:200]}). Resume from another one."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a clusterlens checkpoint.")
    if state.get("format_version", 0) > _FORMAT_VERSION:
        raise CheckpointError(
            f"The checkpoint {path} has format version {state['format_version']}; this "
            f"clusterlens ({__version__}) reads up to {_FORMAT_VERSION}."
        )
    return state


def load_checkpoint(path, *, network: str | None = None, map_location="cpu") -> LoadedCheckpoint:
    """Read a checkpoint and rebuild its model and input transform.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_checkpoint`.
    network : str, optional
        The registry name the caller expects; a checkpoint of another architecture raises
        :class:`CheckpointError` instead of loading.
    map_location : str or torch.device
        Where to put the weights (default CPU).

    Raises
    ------
    CheckpointError
        For a missing, truncated or corrupt file, a file of another format, another
        architecture than ``network``, or weights that do not fit the architecture.
    """
    path = Path(path)
    state = _read(path, map_location)
    spec = state["network"]
    if network is not None and spec["name"] != network:
        raise CheckpointError(
            f"The checkpoint {path} holds a {spec['name']!r} network, not {network!r}."
        )
    options = dict(spec["options"])
    model = get_network(spec["name"], **options)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"The weights in {path} do not fit the {spec['name']!r} network with options "
            f"{options}: {str(exc).splitlines()[0]}"
        ) from exc
    model.to(map_location).eval()
    return LoadedCheckpoint(
        model=model,
        transform=transform_from_dict(state["transform"]),
        epoch=int(state["epoch"]),
        history=list(state["history"]),
        state=state,
    )
