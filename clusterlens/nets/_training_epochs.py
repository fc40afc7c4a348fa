"""What one training epoch draws: the (seed, epoch) sampler, the joined dataset, the weight
average and the per-step learning-rate schedule (see :mod:`clusterlens.nets.training`).

Every draw of epoch ``e`` depends only on ``(seed, e)``: that is what lets a resumed run end
bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # for annotations only
    from clusterlens.nets._training_config import TrainingConfig


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
