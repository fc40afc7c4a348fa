"""The configuration of a training run and the paper's recipes (see
:mod:`clusterlens.nets.training`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from clusterlens._validation import check_int
from clusterlens.errors import ParameterError
from clusterlens.nets.augment import GENERALISATION, SkyAugmentation
from clusterlens.nets.transforms import RobustAsinhStretch, transform_from_dict

__all__ = ["PRESETS", "TrainingConfig"]

#: The paper's configurations (Zhang et al., section 3 and Figure 4).
PRESETS: dict[str, dict] = {
    "case1": {
        "optimizer": "adam",
        "batch_size": 32,
        "lr": 3e-6,
        "lr_final": None,
        "weight_decay": 0.1,
    },
    "case2": {
        "optimizer": "adam",
        "batch_size": 32,
        "lr": 1e-4,
        "lr_final": 1e-5,
        "weight_decay": 0.01,
    },
    "cpu": {
        "network": "resnet18",
        "network_options": {"widths": [16, 32, 64, 128]},
        # a 33.5" crop: holds arcs out to 16.8" from the centre (the 214-pixel field binned
        # 2x2, RobustAsinhStretch(downsample=2), holds all of them but learned more slowly
        # on the training set's validation split: docs/training.md)
        "crop": 128,
        "epochs": 12,
        "optimizer": "adamw",
        "batch_size": 32,
        "lr": 2e-3,
        "lr_final": 2e-5,
        "weight_decay": 0.05,
        "warmup_epochs": 1.0,
        "grad_clip": 1.0,
        "ema_decay": 0.99,
        "sky_augmentation": GENERALISATION.to_dict(),
        "calibrate": True,
    },
    "gpu": {
        "network": "resnet18",
        "network_options": {},
        "crop": 223,
        "epochs": 200,
        "optimizer": "adam",
        "batch_size": 32,
        "lr": 3e-6,
        "lr_final": None,
        "weight_decay": 0.1,
        "sky_augmentation": GENERALISATION.to_dict(),
        "calibrate": True,
    },
}


#: The integer options of TrainingConfig: (name, smallest value, None allowed).
_INT_OPTIONS = (
    ("epochs", 1, False),
    ("batch_size", 1, False),
    ("crop", 1, True),
    ("max_shift", 0, False),
    ("early_stopping_patience", 1, True),
    ("seed", 0, False),
    ("num_workers", 0, True),
    ("threads", 1, True),
    ("hard_negative_rounds", 0, False),
    ("hard_negatives", 0, False),
    ("hard_negative_every", 1, False),
)


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that defines a training run.

    Parameters
    ----------
    network : str
        Registry name of the network (see :func:`~clusterlens.nets.get_network`).
    network_options : dict
        Extra keyword arguments of the network.
    epochs : int
        Number of epochs (the paper ran 200 and picked the best-AUC epoch).
    batch_size : int
        Images per optimiser step (32 in the paper).
    optimizer : {"adam", "adamw"}
        ``"adam"``: PyTorch Adam, whose weight decay is an L2 penalty (the paper's);
        ``"adamw"``: decoupled weight decay (Loshchilov & Hutter 2019).
    lr : float
        (Initial) learning rate.
    lr_final : float or None
        If set, the learning rate is cosine-annealed from ``lr`` to ``lr_final`` over
        ``epochs`` (case 2); otherwise it stays constant (case 1).
    weight_decay : float
        Weight decay.
    crop : int or None
        Side in pixels of the centre crop fed to the network (223 in the paper); None feeds
        whole images.
    augment : bool
        Random 90-degree rotations, flips and shifts of the training images.
    max_shift : int
        Largest random shift in pixels.
    early_stopping_patience : int or None
        Stop when the validation AUC has not improved by more than ``min_delta`` for this many
        epochs; None trains all epochs.
    min_delta : float
        Smallest AUC gain that counts as an improvement.
    seed : int
        Seed of the initial weights, the shuffling and the augmentations.
    device : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    amp : bool or None
        Mixed precision (bfloat16, or float16 with loss scaling where bf16 is unsupported);
        None: on for CUDA, off for CPU.
    channels_last : bool or None
        Use the channels-last memory layout; None: on for CUDA (tensor-core convolutions),
        off for CPU, where training steps measured 0.6-1.0x as fast as with the default
        layout (``benchmarks/bench_training.py``).
    num_workers : int or None
        Data-loader processes; None: 0 on CPU (the cores train the network) and
        ``min(8, cpu_count)`` on GPU.
    threads : int or None
        ``torch.set_num_threads`` for CPU training; None leaves torch's setting.
    transform : dict
        The input transform, as :meth:`~clusterlens.nets.transforms.InputTransform.to_dict`
        (default: the per-cutout :class:`~clusterlens.nets.transforms.RobustAsinhStretch`;
        ``AsinhStretch().to_dict()`` gives the fixed stretch of earlier versions).
    progress : bool
        Show a tqdm progress bar.
    sky_augmentation : dict or None
        :class:`~clusterlens.nets.augment.SkyAugmentation` options (PSF blur, noise, flux
        scale, colour, sky offset) applied to every training batch when ``augment`` is on;
        None: none (the ``cpu`` and ``gpu`` presets use ``GENERALISATION``).
    warmup_epochs : float
        With a value > 0 the learning rate is set every step: a linear warm-up from ~0 to
        ``lr`` over this many epochs, then a cosine decay to ``lr_final`` (or constant when
        ``lr_final`` is None) at the end of ``epochs``.  0: the per-epoch schedules above.
    grad_clip : float or None
        Clip the global gradient norm to this value (None: no clipping).
    ema_decay : float in (0, 1) or None
        Keep an exponential moving average of the weights (and batch-norm statistics) with
        this decay per step, warmed up as ``min(decay, (1 + n) / (10 + n))``; the average is
        what is validated and saved in ``best.pt``/``last.pt`` (the raw weights are kept in
        ``last.pt`` for resuming).  None: no average.
    hard_negative_rounds : int
        Rounds of hard-negative mining (needs ``Trainer.fit(..., negative_pool=...)``): after
        ``every, 2 every, ...`` epochs the current model scores the pool and its
        ``hard_negatives`` highest-scoring non-lenses not yet added join the training set.
    hard_negatives : int
        Negatives added per round.
    hard_negative_every : int
        Epochs between rounds.
    calibrate : bool
        After training, fit a temperature on the validation set and store it in ``best.pt``
        (:func:`~clusterlens.nets.calibration.calibrate_checkpoint`), so that its scores are
        calibrated probabilities.
    """

    network: str = "resnet18"
    network_options: dict = field(default_factory=dict)
    epochs: int = 200
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 3e-6
    lr_final: float | None = None
    weight_decay: float = 0.1
    crop: int | None = 223
    augment: bool = True
    max_shift: int = 4
    early_stopping_patience: int | None = None
    min_delta: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    num_workers: int | None = None
    threads: int | None = None
    transform: dict = field(default_factory=lambda: RobustAsinhStretch().to_dict())
    progress: bool = True
    sky_augmentation: dict | None = None
    warmup_epochs: float = 0.0
    grad_clip: float | None = None
    ema_decay: float | None = None
    hard_negative_rounds: int = 0
    hard_negatives: int = 0
    hard_negative_every: int = 1
    calibrate: bool = False

    def __post_init__(self):
        for name, low, allow_none in _INT_OPTIONS:
            value = getattr(self, name)
            value = check_int(value, name, "TrainingConfig", low=low, allow_none=allow_none)
            object.__setattr__(self, name, value)  # numpy integers stored as ints (JSON)
        for name in ("lr", "lr_final"):
            value = getattr(self, name)
            if value is None and name == "lr_final":
                continue
            if not isinstance(value, int | float) or not 0 < value < 1:
                raise ParameterError(
                    f"The {name!r} parameter of TrainingConfig must be a float in the range "
                    f"(0, 1). Got {value!r} instead."
                )
        if not isinstance(self.weight_decay, int | float) or self.weight_decay < 0:
            raise ParameterError(
                "The 'weight_decay' parameter of TrainingConfig must be a float >= 0. "
                f"Got {self.weight_decay!r} instead."
            )
        if self.optimizer not in ("adam", "adamw"):
            raise ParameterError(
                "The 'optimizer' parameter of TrainingConfig must be 'adam' or 'adamw'. "
                f"Got {self.optimizer!r} instead."
            )
        transform_from_dict(self.transform)  # fails early on an unknown transform
        if self.sky_augmentation is not None:
            SkyAugmentation.from_dict(self.sky_augmentation)
        if self.hard_negative_rounds and not self.hard_negatives:
            raise ParameterError(
                "TrainingConfig: hard_negative_rounds > 0 needs hard_negatives > 0 (the number "
                "of negatives added per round)."
            )
        if (
            isinstance(self.warmup_epochs, bool)
            or not isinstance(self.warmup_epochs, int | float)
            or self.warmup_epochs < 0
        ):
            raise ParameterError(
                "The 'warmup_epochs' parameter of TrainingConfig must be a number >= 0. "
                f"Got {self.warmup_epochs!r} instead."
            )
        if self.grad_clip is not None and (
            not isinstance(self.grad_clip, int | float) or self.grad_clip <= 0
        ):
            raise ParameterError(
                "The 'grad_clip' parameter of TrainingConfig must be a positive number or "
                f"None. Got {self.grad_clip!r} instead."
            )
        if self.ema_decay is not None and (
            not isinstance(self.ema_decay, int | float) or not 0 < self.ema_decay < 1
        ):
            raise ParameterError(
                "The 'ema_decay' parameter of TrainingConfig must be in (0, 1) or None. "
                f"Got {self.ema_decay!r} instead."
            )

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainingConfig:
        """A named recipe (``"case1"``, ``"case2"``, ``"cpu"``, ``"gpu"``, see
        :data:`PRESETS`), with any field overridden."""
        if name not in PRESETS:
            raise ParameterError(
                f"The 'preset' must be one of {sorted(PRESETS)}. Got {name!r} instead."
            )
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        """The configuration as plain data (saved in checkpoints and ``config.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
