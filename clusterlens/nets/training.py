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

Where it lives
--------------
This module holds :class:`Trainer`; the pieces it composes are private modules:
``_training_config`` (:class:`TrainingConfig`, :data:`PRESETS`), ``_training_epochs`` (the
``(seed, epoch)`` sampler, the joined training set, the weight average, the warm-up schedule),
``_training_resume`` (resuming from ``last.pt``, the metrics files) and ``_training_plot``
(:func:`plot_training_history`, Figure 4).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clusterlens._io import atomic_write_text
from clusterlens.datasets import Augmentation, LensDataset
from clusterlens.errors import ParameterError
from clusterlens.metrics import roc_auc
from clusterlens.nets._runtime import autocast, resolve_device, training_dtype
from clusterlens.nets._training_config import PRESETS, TrainingConfig
from clusterlens.nets._training_epochs import (
    _ema_update,
    _EpochDataset,
    _EpochSampler,
    _warmup_cosine,
)
from clusterlens.nets._training_plot import plot_training_history
from clusterlens.nets._training_resume import (
    data_record,
    restore_run_state,
    saved_run_state,
    write_metrics,
)
from clusterlens.nets.augment import SkyAugmentation
from clusterlens.nets.checkpoint import capture_rng_state, save_checkpoint
from clusterlens.nets.registry import get_network
from clusterlens.nets.transforms import transform_from_dict

__all__ = ["PRESETS", "Trainer", "TrainingConfig", "plot_training_history"]

# The public home of the plot defined in a private module (documentation, reprs).  The
# dataclasses keep their own module: Sphinx reads their fields' docs from its source.
plot_training_history.__module__ = __name__


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
        state = saved_run_state(out, cfg, train, val, resume=self.resume)
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
            history, start = restore_run_state(state, model, ema, optimizer, scheduler, scaler)

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
            extra["data"] = data_record(train, val)
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
            write_metrics(out, history)
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
