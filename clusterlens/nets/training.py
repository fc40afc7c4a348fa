"""Training a lens finder: recipes, checkpoints, resuming, hard negatives, Figure 4.

Zhang et al. (section 3) train a ResNet-18 with Adam at batch size 32 under a cross-entropy
loss, in two configurations (their Figure 4):

* ``"case1"``: learning rate 3e-6, weight decay 0.1 (the model they kept, AUC 0.94);
* ``"case2"``: learning rate 1e-4 cosine-annealed to 1e-5, weight decay 0.01 (AUC 0.97, less
  stable).

Two recipes add what makes a finder generalise to other skies (per-cutout robust input
scaling, :data:`~clusterlens.nets.augment.GENERALISATION` sky augmentations, temperature
calibration on the validation set):

* ``"cpu"``: a laptop recipe, ResNet-18 at a quarter of the width on a 128-pixel (33.5")
  crop, AdamW with a one-epoch linear warm-up and cosine decay, gradient
  clipping and an exponential moving average (EMA) of the weights, the one validated and
  saved;
* ``"gpu"``: the paper's case 1 (full ResNet-18, 223 pixels, Adam 3e-6, weight decay 0.1,
  batch 32, 200 epochs, best-AUC epoch kept) with the same additions.

:class:`Trainer` runs either (or any :class:`TrainingConfig`) on the same code on CPU and GPU:
lensing-preserving augmentations (90-degree rotations, flips, shifts of a few pixels),
validation AUC after every epoch, the best-AUC model kept as ``best.pt``, early stopping, mixed
precision and ``channels_last`` on GPU, and a checkpoint (``last.pt``) after every epoch from
which a killed run resumes and ends exactly where an uninterrupted one would (bit-identical on
CPU: the shuffling and augmentation draws of epoch ``e`` depend only on ``(seed, e)``, and the
generator states are saved).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from clusterlens._io import atomic_path, atomic_write_text
from clusterlens._validation import check_int
from clusterlens.datasets import Augmentation, LensDataset
from clusterlens.errors import ParameterError
from clusterlens.metrics import roc_auc
from clusterlens.nets._runtime import autocast, resolve_device, training_dtype
from clusterlens.nets.augment import GENERALISATION, SkyAugmentation
from clusterlens.nets.checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from clusterlens.nets.registry import get_network
from clusterlens.nets.transforms import RobustAsinhStretch, transform_from_dict

if TYPE_CHECKING:  # for annotations only
    from matplotlib.figure import Figure

__all__ = ["PRESETS", "Trainer", "TrainingConfig", "plot_training_history"]

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
        Rounds of hard-negative mining (needs ``Trainer.fit(..., negative_pool=...)``): before
        epochs ``every, 2 every, ...`` the current model scores the pool and its
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


def _data_record(train, val) -> dict:
    """What a run was trained and validated on: each set's dataset folder and a checksum of
    its image indices (a resumed run must see the same images)."""

    def one(ds):
        idx = np.ascontiguousarray(np.asarray(ds.indices, dtype=np.int64))
        return f"{Path(ds.path).resolve()}#{hashlib.sha256(idx.tobytes()).hexdigest()[:16]}"

    return {"train": one(train), "val": one(val)}


class _EpochSampler:
    """Yields (epoch, position) pairs in a permutation that depends only on (seed, epoch).

    Passing the epoch with every item lets persistent loader workers apply the right
    augmentation draws without being told about epochs.
    """

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def __iter__(self):
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            if self.shuffle
            else np.arange(self.n)
        )
        return iter([(self.epoch, int(k)) for k in order])

    def __len__(self):
        return self.n


class _EpochDataset:
    """One or more datasets seen as one (the training set plus mined hard negatives)."""

    def __init__(self, datasets, crop, augmentation):
        self.views = [d.torch(crop=crop, augmentation=augmentation) for d in datasets]
        self.starts = np.cumsum([0] + [len(v) for v in self.views])

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, item):
        epoch, k = item
        part = int(np.searchsorted(self.starts, k, side="right")) - 1
        view = self.views[part]
        view.epoch = epoch
        return view[k - int(self.starts[part])]


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
            else:  # num_batches_tracked
                e.copy_(p)


def _warmup_cosine(cfg: TrainingConfig, steps_per_epoch: int):
    """The per-step learning-rate factor of ``warmup_epochs > 0``."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = max(1, round(cfg.warmup_epochs * steps_per_epoch))
    final = (cfg.lr_final / cfg.lr) if cfg.lr_final is not None else 1.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class Trainer:
    """Train a network on a :class:`~clusterlens.datasets.LensDataset`.

    Parameters
    ----------
    config : TrainingConfig or str, optional
        The run's configuration, or a preset name (``"case1"``, ``"case2"``).  Default case 1.
    out : str or Path
        Run directory: ``last.pt`` (after every epoch), ``best.pt`` (best validation AUC),
        ``metrics.csv``/``metrics.json`` (per epoch), ``config.json`` and
        ``training.png`` (Figure 4).
    resume : bool
        Continue from ``out/last.pt`` if it exists.  Without it an existing run in ``out``
        is an error, so that nothing is overwritten by accident.

    Attributes
    ----------
    model_ : torch.nn.Module
        The network after :meth:`fit` (the last epoch's weights, their EMA with
        ``ema_decay``; ``best.pt`` has the best).
    history_ : list of dict
        Per-epoch ``epoch``, ``train_loss``, ``val_loss``, ``val_auc``, ``lr``, ``seconds``,
        ``images_per_second``.
    best_epoch_, best_auc_ : int, float
        Epoch (1-based) and validation AUC of ``best.pt``.
    stopped_early_ : bool
        Whether early stopping ended the run.
    hard_negatives_ : list of list of int
        Pool dataset indices added in each hard-negative round.
    calibration_ : CalibrationReport or None
        The temperature fitted on ``val`` for ``best.pt`` (``calibrate=True``).
    """

    def __init__(self, config: TrainingConfig | str | None = None, *, out, resume: bool = False):
        self.config = config
        self.out = out
        self.resume = resume

    # -- setup --------------------------------------------------------------------------
    def _resolved_config(self) -> TrainingConfig:
        config = self.config
        if config is None:
            return TrainingConfig.preset("case1")
        if isinstance(config, str):
            return TrainingConfig.preset(config)
        if not isinstance(config, TrainingConfig):
            raise ParameterError(
                "The 'config' parameter of Trainer must be a TrainingConfig or a preset name. "
                f"Got {type(config).__name__} instead."
            )
        return config

    @staticmethod
    def _device(name: str) -> torch.device:
        return resolve_device(name)

    @staticmethod
    def _as_dataset(data, name: str) -> LensDataset:
        if isinstance(data, str | os.PathLike):
            data = LensDataset(data)
        if not isinstance(data, LensDataset):
            raise ParameterError(
                f"The {name!r} parameter of Trainer.fit must be a LensDataset or a dataset "
                f"path. Got {type(data).__name__} instead."
            )
        if len(data) == 0:
            raise ParameterError(f"The {name!r} dataset of Trainer.fit is empty.")
        return data

    def _loader(self, datasets, *, train: bool, cfg: TrainingConfig, device: torch.device):
        datasets = datasets if isinstance(datasets, list) else [datasets]
        n_images = sum(len(d) for d in datasets)
        augmentation = (
            Augmentation(max_shift=cfg.max_shift, seed=cfg.seed) if train and cfg.augment else None
        )
        workers = cfg.num_workers
        if workers is None:
            workers = 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)
        sampler = _EpochSampler(n_images, cfg.seed, shuffle=train)
        loader = torch.utils.data.DataLoader(
            _EpochDataset(datasets, cfg.crop, augmentation),
            batch_size=cfg.batch_size,
            sampler=sampler,
            # BatchNorm cannot train on a batch of one; dropping the ragged end is harmless.
            drop_last=train and n_images > cfg.batch_size,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
        )
        return loader, sampler

    def _build(self, cfg, device, steps_per_epoch):
        torch.manual_seed(cfg.seed)
        model = get_network(cfg.network, **cfg.network_options).to(device)
        if self._channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt_class = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        optimizer = opt_class(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.warmup_epochs > 0:
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, _warmup_cosine(cfg, steps_per_epoch)
            )
        elif cfg.lr_final is not None:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=cfg.epochs, eta_min=cfg.lr_final
            )
        else:
            scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
        amp_dtype = training_dtype(cfg.amp, device)
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        return model, optimizer, scheduler, scaler, amp_dtype

    # -- one epoch ----------------------------------------------------------------------
    def _prepare(self, images, device, transform, channels_last):
        x = transform(images.to(device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def _step(self, model, optimizer, scaler, x, y, amp_dtype, grad_clip=None) -> float:
        with autocast(x.device.type, amp_dtype):
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        return float(loss.detach())

    def _train_epoch(
        self,
        model,
        optimizer,
        scaler,
        loader,
        device,
        transform,
        cfg,
        amp_dtype,
        bar,
        *,
        epoch=0,
        scheduler=None,
        ema=None,
        sky=None,
    ) -> tuple[float, int]:
        model.train()
        total, count = 0.0, 0
        per_step = cfg.warmup_epochs > 0
        for step, (images, labels) in enumerate(loader):
            images = images.to(device, non_blocking=True)
            if sky is not None:
                images = sky(images, epoch=epoch, step=step)
            x = self._prepare(images, device, transform, self._channels_last)
            y = labels.to(device, non_blocking=True).long()
            loss = self._step(model, optimizer, scaler, x, y, amp_dtype, cfg.grad_clip)
            if per_step:
                scheduler.step()
            if ema is not None:
                n = epoch * len(loader) + step
                _ema_update(ema, model, min(cfg.ema_decay, (1.0 + n) / (10.0 + n)))
            total += loss * len(y)
            count += len(y)
            bar.update(len(y))
            bar.set_postfix(loss=f"{loss:.4f}")
        return total / max(count, 1), count

    def _evaluate(self, model, loader, device, transform, cfg, amp_dtype):
        model.eval()
        losses, probs, truth = [], [], []
        with torch.inference_mode():
            for images, labels in loader:
                x = self._prepare(images, device, transform, self._channels_last)
                with autocast(device.type, amp_dtype):
                    logits = model(x).float()
                y = labels.to(device).long()
                losses.append(nn.functional.cross_entropy(logits, y, reduction="sum").item())
                probs.append(torch.softmax(logits, 1)[:, 1].cpu().numpy())
                truth.append(labels.numpy())
        probs, truth = np.concatenate(probs), np.concatenate(truth)
        return sum(losses) / len(truth), roc_auc(truth, probs)

    # -- the run ------------------------------------------------------------------------
    def fit(self, train, val, *, negative_pool=None) -> Trainer:
        """Train on ``train``, validating on ``val`` after every epoch; returns ``self``.

        Parameters
        ----------
        train, val : LensDataset or path
            Training and validation datasets (see :meth:`LensDataset.split`); ``val``
            must hold lenses and non-lenses.
        negative_pool : LensDataset or path, optional
            Candidates for hard-negative mining (``hard_negative_rounds > 0``): images of the
            training images' shape; only its non-lenses (label 0) are ever added.  The mined
            images are recorded in the checkpoints (and ``hard_negatives.json``), so a resumed
            run trains on the same set.
        """
        cfg = self._resolved_config()
        out = Path(self.out)
        train = self._as_dataset(train, "train")
        val = self._as_dataset(val, "val")
        if len(np.unique(val.view_labels)) < 2:
            raise ParameterError("The 'val' dataset must hold both lenses and non-lenses.")
        pool = None
        if cfg.hard_negative_rounds:
            if negative_pool is None:
                raise ParameterError(
                    "TrainingConfig.hard_negative_rounds > 0 needs Trainer.fit(..., "
                    "negative_pool=<dataset of non-lenses>)."
                )
            pool = self._as_dataset(negative_pool, "negative_pool")
            if pool.image_shape != train.image_shape:
                raise ParameterError(
                    f"The 'negative_pool' images are {pool.image_shape}, the training images "
                    f"{train.image_shape}; they must have the same shape."
                )
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        device = self._device(cfg.device)
        transform = transform_from_dict(cfg.transform)
        sky = (
            SkyAugmentation.from_dict({**cfg.sky_augmentation, "seed": cfg.seed})
            if cfg.augment and cfg.sky_augmentation is not None
            else None
        )
        self._channels_last = (
            cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
        )

        last = out / "last.pt"
        state = None
        if last.exists():
            if not self.resume:
                raise ParameterError(
                    f"{out} already holds a training run (last.pt). Pass resume=True "
                    "(--resume) to continue it, or choose another output directory."
                )
            state = load_checkpoint(last, map_location="cpu").state
            saved = TrainingConfig.from_dict(state["config"])
            changed = {
                f.name
                for f in fields(TrainingConfig)
                if getattr(saved, f.name) != getattr(cfg, f.name)
            } - _RESUMABLE_CHANGES
            if changed:
                raise CheckpointError(
                    f"Cannot resume {last}: the configuration differs in {sorted(changed)}. "
                    "Resume with the configuration of the run (see config.json)."
                )
            before = state.get("extra", {}).get("data")
            now = _data_record(train, val)
            moved = sorted(k for k in now if before is not None and before.get(k) != now[k])
            if moved:
                raise CheckpointError(
                    f"Cannot resume {last}: it was trained on other data ({', '.join(moved)} "
                    f"changed: was {[before.get(k) for k in moved]}, now "
                    f"{[now[k] for k in moved]}). Resume with the run's --data, --val or "
                    "--val-fraction, or choose another output directory."
                )
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))

        mined: list[list[int]] = []  # pool dataset indices added in each round
        if state is not None:
            mined = [list(r) for r in state.get("extra", {}).get("hard_negatives", [])]

        def train_parts():
            parts = [train]
            added = [i for r in mined for i in r]
            if added:
                parts.append(pool.subset(np.asarray(added, dtype=np.int64)))
            return parts

        train_loader, train_sampler = self._loader(
            train_parts(), train=True, cfg=cfg, device=device
        )
        val_loader, _ = self._loader(val, train=False, cfg=cfg, device=device)
        model, optimizer, scheduler, scaler, amp_dtype = self._build(cfg, device, len(train_loader))
        ema = copy.deepcopy(model).eval() if cfg.ema_decay is not None else None
        history: list[dict] = []
        start = 0
        if state is not None:
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

        # Replay the run's rule for "best" (an AUC gain of more than min_delta).
        self.best_auc_, self.best_epoch_ = -math.inf, 0
        for record in history:
            if record["val_auc"] > self.best_auc_ + cfg.min_delta:
                self.best_auc_, self.best_epoch_ = record["val_auc"], record["epoch"]
        self.stopped_early_ = self._should_stop(history, cfg)

        from clusterlens._progress import progress as progress_bar
        from clusterlens._progress import write as progress_write

        epoch = start
        while epoch < cfg.epochs and not self.stopped_early_:
            evaluated = ema if ema is not None else model
            due = (
                pool is not None
                and epoch > 0
                and epoch % cfg.hard_negative_every == 0
                and len(mined) < cfg.hard_negative_rounds
                and len(mined) < epoch // cfg.hard_negative_every
            )
            if due:
                from clusterlens.nets.mining import mine_hard_negatives

                taken = {i for r in mined for i in r}
                exclude = np.flatnonzero(np.isin(pool.indices, list(taken)))
                positions = mine_hard_negatives(
                    (evaluated, transform),
                    pool,
                    cfg.hard_negatives,
                    exclude=exclude,
                    crop=cfg.crop,
                    batch_size=cfg.batch_size,
                    device=device,
                )
                mined.append([int(i) for i in pool.indices[positions]])
                atomic_write_text(out / "hard_negatives.json", json.dumps(mined))
                train_loader, train_sampler = self._loader(
                    train_parts(), train=True, cfg=cfg, device=device
                )
            n_train = (
                len(train_loader) * cfg.batch_size
                if train_loader.drop_last
                else len(train_loader.dataset)
            )
            train_sampler.epoch = epoch
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            with progress_bar(
                total=n_train,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                unit="img",
                disable=not cfg.progress,
                leave=False,
            ) as bar:
                train_loss, seen = self._train_epoch(
                    model,
                    optimizer,
                    scaler,
                    train_loader,
                    device,
                    transform,
                    cfg,
                    amp_dtype,
                    bar,
                    epoch=epoch,
                    scheduler=scheduler,
                    ema=ema,
                    sky=sky,
                )
            train_seconds = time.perf_counter() - t0
            if cfg.warmup_epochs <= 0:
                scheduler.step()
            val_loss, val_auc = self._evaluate(
                evaluated, val_loader, device, transform, cfg, amp_dtype
            )
            epoch += 1
            record = {
                "epoch": epoch,
                "train_loss": float(train_loss),
                "val_loss": float(val_loss),
                "val_auc": float(val_auc),
                "lr": float(lr),
                "seconds": float(time.perf_counter() - t0),
                "images_per_second": float(seen / train_seconds),
            }
            if pool is not None:
                record["n_hard_negatives"] = sum(len(r) for r in mined)
            history.append(record)
            extra = {"hard_negatives": mined} if mined else {}
            extra["data"] = _data_record(train, val)
            save = dict(
                transform=transform,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                epoch=epoch,
                history=history,
                config=cfg.to_dict(),
            )
            if val_auc > self.best_auc_ + cfg.min_delta:
                self.best_auc_, self.best_epoch_ = float(val_auc), epoch
                save_checkpoint(out / "best.pt", evaluated, **save, extra=extra)
            last_extra = dict(extra)
            if ema is not None:
                target = getattr(model, "_orig_mod", model)
                last_extra["train_state_dict"] = {
                    k: v.detach().cpu() for k, v in target.state_dict().items()
                }
            save_checkpoint(last, evaluated, **save, rng=capture_rng_state(), extra=last_extra)
            self._write_metrics(out, history)
            if cfg.progress:
                progress_write(
                    f"epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
                    f"val AUC {val_auc:.4f} (best {self.best_auc_:.4f} at {self.best_epoch_})"
                )
            self.stopped_early_ = self._should_stop(history, cfg)

        final = ema if ema is not None else model  # what was validated and saved
        self.model_ = getattr(final, "_orig_mod", final)
        self.history_ = history
        self.transform_ = transform
        self.config_ = cfg
        self.hard_negatives_ = mined
        self.calibration_ = None
        if cfg.calibrate and (out / "best.pt").exists():
            from clusterlens.nets.calibration import calibrate_checkpoint

            self.calibration_ = calibrate_checkpoint(
                out / "best.pt", val, batch_size=cfg.batch_size, device=str(device)
            )
        if history:
            fig = plot_training_history(history, best_epoch=self.best_epoch_)
            fig.savefig(out / "training.png", dpi=120)
            import matplotlib.pyplot as plt

            plt.close(fig)
        return self

    @staticmethod
    def _should_stop(history, cfg) -> bool:
        patience = cfg.early_stopping_patience
        if patience is None or len(history) <= patience:
            return False
        aucs = [h["val_auc"] for h in history]
        best_before = max(aucs[:-patience])
        return max(aucs[-patience:]) <= best_before + cfg.min_delta

    @staticmethod
    def _write_metrics(out: Path, history: list[dict]) -> None:
        atomic_write_text(out / "metrics.json", json.dumps(history, indent=1))
        with atomic_path(out / "metrics.csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)


def plot_training_history(history, *, best_epoch: int | None = None, path=None) -> Figure:
    """Figure 4 of the paper: loss, validation AUC and its derivative against epoch.

    Parameters
    ----------
    history : list of dict, or a path to ``metrics.json``
        Per-epoch records with ``epoch``, ``train_loss``, ``val_loss``, ``val_auc``.
    best_epoch : int, optional
        Marked with a dashed vertical line (the early-stopping point).
    path : str or Path, optional
        Save the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if isinstance(history, str | os.PathLike):
        history = json.loads(Path(history).read_text())
    epochs = np.array([h["epoch"] for h in history], dtype=float)
    auc = np.array([h["val_auc"] for h in history])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    # points as well as lines for a short run: a single epoch draws no line at all
    mark = {"marker": "o", "ms": 4} if epochs.size <= 20 else {}
    axes[0].plot(epochs, [h["train_loss"] for h in history], label="training", **mark)
    axes[0].plot(epochs, [h["val_loss"] for h in history], label="validation", **mark)
    axes[0].set_ylabel("cross-entropy loss")
    axes[0].legend()
    axes[1].plot(epochs, auc, color="C2", **mark)
    axes[1].set_ylabel("validation AUC")
    derivative = np.gradient(auc, epochs) if len(auc) > 1 else np.zeros_like(auc)
    axes[2].plot(epochs, derivative, color="C3", **mark)
    axes[2].axhline(0, color="0.6", lw=0.8)
    axes[2].set_ylabel("d AUC / d epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        # whole epochs only, with half an epoch of margin: one epoch (a quick run) would
        # otherwise get ticks 0.95...1.05
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs.size:
            ax.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
        if best_epoch:
            ax.axvline(best_epoch, ls="--", color="0.3", lw=1)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
