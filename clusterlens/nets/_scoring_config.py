"""The configuration of a scoring run and its error type (see :mod:`clusterlens.nets.scoring`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from clusterlens._validation import check_int
from clusterlens.errors import ClusterlensError, ParameterError

__all__ = ["PRECISIONS", "SYMMETRIES", "ScoringConfig", "ScoringError"]

#: Accepted values of :attr:`ScoringConfig.precision`.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: Accepted values of :attr:`ScoringConfig.symmetries`.
SYMMETRIES = (1, 2, 4, 8)
_ERRORS = ("raise", "skip")


class ScoringError(ClusterlensError):
    """An object cannot be scored (bad pixels, wrong size, unreadable cutout) or the saved
    parts of an interrupted run do not belong to this run."""


@dataclass(frozen=True)
class ScoringConfig:
    """How a :class:`Scorer` runs.

    Parameters
    ----------
    batch_size : int
        Images per forward pass (64).
    chunk_size : int
        Objects per saved part (4096): the unit of resuming and of Dask tasks.
    size : int or None
        Side in pixels of the images given to the network; None: the checkpoint's training
        crop (223 for the paper's network).  Larger cutouts are cut about their centre,
        smaller ones are an error.
    bands : str
        Bands in the order the network expects (``"grz"``).
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    precision : {"auto", "fp32", "bf16", "fp16", "int8"}
        Arithmetic of the network body; ``"auto"``: bf16 on CUDA (fp16 if the GPU lacks
        bf16), fp32 on CPU.  bf16 on CPU is an option (faster on CPUs with bf16 units;
        scores agree with fp32 to about 1e-2, see ``docs/scoring.md``).  ``"int8"`` (CPU
        only) quantises the body (weights per channel, activations per tensor with ranges
        observed on ``calibration``); the head stays float32.
    channels_last : bool or None
        Channels-last memory layout; None: on (it measured faster on GPU and on CPU, in fp32
        and in bf16, see ``docs/scoring.md``).
    threads : int or None
        ``torch.set_num_threads`` per worker on CPU; None: torch's setting when scoring in
        this process, the CPU count divided by the number of workers on a local cluster.
    fold_batch_norm : bool
        Fold each batch norm into the convolution before it (exact in eval mode; fewer
        passes over memory), for networks with ``features``/``head`` that torch.fx traces.
    read_workers : int
        Threads reading cutouts ahead of the network (4).
    read_ahead : int
        Batches kept in flight by the readers (3).
    calibration : str or None
        For ``precision="int8"`` (required there): a dataset folder
        (:class:`~clusterlens.datasets.LensDataset`) whose first ``calibration_images``
        images, cut to ``size`` and passed through the checkpoint's transform, set the int8
        activation ranges.  Use images like those to be scored (e.g. the validation set).
    calibration_images : int
        How many calibration images (256).
    symmetries : {1, 2, 4, 8}
        Test-time augmentation: score every image in this many orientations that map a lens
        onto a lens (2: a half turn; 4: the four quarter turns; 8: the quarter turns and
        their mirror images) and combine them as a committee does, the logit of the mean
        probability.  The views are of the network's input (after the checkpoint's
        transform, which is applied once).  1 (default): the image as it is.  Costs that
        many forward passes; see ``docs/scoring.md`` for what it changes.
    on_error : {"raise", "skip"}
        What an unreadable or invalid cutout does: stop the run with :class:`ScoringError`,
        or give the object a NaN score and its message in an ``error`` column.
    progress : bool
        Show a tqdm progress bar.
    """

    batch_size: int = 64
    chunk_size: int = 4096
    size: int | None = None
    bands: str = "grz"
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    threads: int | None = None
    fold_batch_norm: bool = True
    read_workers: int = 4
    read_ahead: int = 3
    on_error: str = "raise"
    progress: bool = True
    calibration: str | None = None
    calibration_images: int = 256
    symmetries: int = 1

    def __post_init__(self):
        names = (
            "batch_size",
            "chunk_size",
            "size",
            "threads",
            "read_workers",
            "read_ahead",
            "calibration_images",
        )
        for name in names:
            allow_none = name in ("size", "threads")
            value = check_int(
                getattr(self, name), name, "ScoringConfig", low=1, allow_none=allow_none
            )
            object.__setattr__(self, name, value)  # numpy integers stored as ints (JSON)
        if self.precision not in PRECISIONS:
            raise ParameterError(
                f"The 'precision' parameter of ScoringConfig must be one of {PRECISIONS}. "
                f"Got {self.precision!r} instead."
            )
        if self.calibration is not None:
            if not isinstance(self.calibration, str | os.PathLike):
                raise ParameterError(
                    "The 'calibration' parameter of ScoringConfig must be the path of a "
                    f"dataset folder. Got {type(self.calibration).__name__} instead."
                )
            object.__setattr__(self, "calibration", os.fspath(self.calibration))
        if self.precision == "int8" and self.calibration is None:
            raise ParameterError(
                "precision='int8' needs the 'calibration' parameter of ScoringConfig: a "
                "dataset folder of images like those to be scored (int8 activation ranges "
                "are observed on them)."
            )
        symmetries = check_int(self.symmetries, "symmetries", "ScoringConfig", low=1)
        if symmetries not in SYMMETRIES:
            raise ParameterError(
                f"The 'symmetries' parameter of ScoringConfig must be one of {SYMMETRIES} "
                f"(orientations scored per image). Got {self.symmetries!r} instead."
            )
        object.__setattr__(self, "symmetries", symmetries)
        if self.on_error not in _ERRORS:
            raise ParameterError(
                f"The 'on_error' parameter of ScoringConfig must be one of {_ERRORS}. "
                f"Got {self.on_error!r} instead."
            )
        if not isinstance(self.bands, str) or not self.bands:
            raise ParameterError(
                f"The 'bands' parameter of ScoringConfig must be a string such as 'grz'. "
                f"Got {self.bands!r} instead."
            )
