"""Calibrated lens probabilities: temperature scaling on a validation set.

A network trained with cross-entropy ranks well but is usually over-confident: of the images
it scores 0.99, fewer than 99% are lenses.  Temperature scaling (Guo et al. 2017) divides the
logit ``z`` by one number ``T`` fitted on a validation set by minimising the negative
log-likelihood; the ranking (AUC, TPR0, TPR10) is unchanged, only the probabilities move.
``T`` is stored in the checkpoint (``calibration``) or the committee manifest, and every
scorer applies it, so a score of 0.9 means that about 90% of such images are lenses — on data
like the validation set.  On another sky the calibration holds only as far as the network
generalises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from clusterlens.errors import ParameterError

__all__ = [
    "CalibrationReport",
    "binary_nll",
    "calibrate_checkpoint",
    "calibration_report",
    "dataset_batches",
    "fit_temperature",
]


def binary_nll(logits, labels) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of labels under sigmoid(logits)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -z, z))))


def fit_temperature(logits, labels, *, bounds=(0.05, 20.0)) -> float:
    """The temperature ``T`` minimising the NLL of ``sigmoid(logits / T)``.

    A bounded 1-D search on ``log T`` (the NLL is smooth and unimodal in it).

    Parameters
    ----------
    logits : array_like
        Uncalibrated logit differences (lens minus non-lens) of a validation set.
    labels : array_like
        1 lens, 0 non-lens (both present).
    bounds : (float, float)
        Search range of ``T``.
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.shape != y.shape or z.ndim != 1 or z.size == 0:
        raise ParameterError(f"fit_temperature: logits {z.shape} and labels {y.shape} differ.")
    if len(np.unique(y)) < 2:
        raise ParameterError("fit_temperature needs lenses and non-lenses in the labels.")
    if not np.isfinite(z).all():
        raise ParameterError("fit_temperature: some logits are NaN/inf.")
    result = minimize_scalar(
        lambda log_t: binary_nll(z / np.exp(log_t), y),
        bounds=(np.log(bounds[0]), np.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(result.x))


@dataclass(frozen=True)
class CalibrationReport:
    """A fitted temperature and the validation figures before and after it.

    Attributes
    ----------
    temperature : float
    nll_before, nll_after : float
        Mean cross-entropy (nats) of the validation set.
    ece_before, ece_after : float
        Expected calibration error (15 equal-width bins of the lens probability).
    n : int
        Validation images.
    """

    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def calibration_report(logits, labels) -> CalibrationReport:
    """Fit the temperature on (logits, labels) and measure NLL and ECE before and after."""
    from scipy.special import expit

    from clusterlens.metrics import expected_calibration_error

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    t = fit_temperature(z, y)
    return CalibrationReport(
        temperature=t,
        nll_before=binary_nll(z, y),
        nll_after=binary_nll(z / t, y),
        ece_before=expected_calibration_error(y, expit(z)),
        ece_after=expected_calibration_error(y, expit(z / t)),
        n=int(y.size),
    )


def dataset_batches(dataset, crop, batch_size: int = 64):
    """Yield ``(images, labels)`` numpy batches of a dataset (or path), centre-cut to
    ``crop`` (None: whole images), in view order."""
    from clusterlens.datasets import LensDataset, center_crop

    if not isinstance(dataset, LensDataset):
        dataset = LensDataset(dataset)
    labels = dataset.view_labels
    for start in range(0, len(dataset), batch_size):
        stop = min(start + batch_size, len(dataset))
        images = np.stack([dataset[k][0] for k in range(start, stop)]).astype(np.float32)
        if crop is not None:
            images = np.ascontiguousarray(center_crop(images, crop))
        yield images, np.asarray(labels[start:stop], dtype=np.int64)


def calibrate_checkpoint(
    path, val, *, out=None, batch_size: int = 64, device: str = "cpu"
) -> CalibrationReport:
    """Fit a temperature for the checkpoint at ``path`` on ``val`` and store it.

    The checkpoint is rewritten atomically (to ``out`` when given) with
    ``calibration = {"temperature", "nll_before", "nll_after", "ece_before", "ece_after",
    "n"}``; any earlier calibration is replaced (the fit starts from the raw logits).

    Parameters
    ----------
    path : str or Path
        A checkpoint.
    val : LensDataset or path
        Validation dataset with lenses and non-lenses, at least the training crop in size.
    out : str or Path, optional
        Write the calibrated checkpoint there instead of in place.
    batch_size : int
        Images per forward pass.
    device : str
        Where to run the network.
    """
    from clusterlens.nets.checkpoint import load_checkpoint, update_checkpoint

    path = Path(path)
    loaded = load_checkpoint(path, map_location=device)
    zs, ys = [], []
    for images, labels in dataset_batches(val, loaded.crop, batch_size):
        zs.append(loaded.logits(images, calibrated=False))
        ys.append(labels)
    report = calibration_report(np.concatenate(zs), np.concatenate(ys))
    update_checkpoint(path, out, calibration=report.to_dict())
    return report
