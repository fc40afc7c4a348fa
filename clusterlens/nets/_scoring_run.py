"""Running a scoring job: the engine (a model or committee on a device, via
:mod:`clusterlens.nets._runtime`), one chunk scored and saved as a part, and chunks spread
over Dask workers (see :mod:`clusterlens.nets.scoring`)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clusterlens._dask import dask_client
from clusterlens.nets._runtime import InferenceNetwork, resolve_device, scoring_dtype
from clusterlens.nets._scoring_config import ScoringConfig
from clusterlens.nets._scoring_inputs import calibration_images, read_batches
from clusterlens.nets._scoring_table import part_path, write_part
from clusterlens.nets.committee import Committee, combine_logits, load_model

__all__ = ["Job", "ScoringEngine", "clear_engines", "dihedral_views", "run_dask", "score_chunk"]


def dihedral_views(x: torch.Tensor, n: int):
    """The first ``n`` (1, 2, 4 or 8) orientations of a (batch, band, y, x) batch: the
    identity, a half turn, the two quarter turns, then the mirror images of those four.

    Each maps an arc onto an arc without interpolating pixels (the training augmentations'
    symmetries), so a lens stays a lens in every view.
    """
    turns = (0, 2, 1, 3)[: min(n, 4)]
    views = [torch.rot90(x, k, dims=(-2, -1)) if k else x for k in turns]
    if n == 8:
        views += [torch.flip(v, dims=(-1,)) for v in views]
    return views


_MEAN = {"kind": "mean"}  # views of one image combine as a committee's members do


class ScoringEngine:
    """A model (or a committee of models) on a device, ready to turn (batch, band, y, x)
    fluxes into calibrated logits.

    Parameters
    ----------
    loaded : LoadedCheckpoint or Committee
        What :func:`~clusterlens.nets.load_model` returned.
    config : ScoringConfig
        Device, precision, layout, threads, int8 calibration.
    n_workers : int
        Worker processes sharing this machine's cores (for the torch thread count).
    """

    def __init__(self, loaded, config: ScoringConfig, n_workers: int = 1):
        self.device = resolve_device(config.device)
        if self.device.type == "cpu" and (config.threads or n_workers > 1):
            # Several worker processes on one machine share its cores.
            torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // n_workers))
        self.amp_dtype = scoring_dtype(config.precision, self.device)
        # Measured (benchmarks/bench_scoring.py): faster on GPU, and on a Zen 5 CPU by ~20%
        # in fp32 and ~35% in bf16.
        self.channels_last = True if config.channels_last is None else config.channels_last
        self.symmetries = config.symmetries
        checkpoints = loaded.members if isinstance(loaded, Committee) else [loaded]
        self.committee = loaded if isinstance(loaded, Committee) else None
        calibration = calibration_images(config) if config.precision == "int8" else None
        self.members = []
        for checkpoint in checkpoints:
            batches = None
            if calibration is not None:  # each member sees the images through its transform
                with torch.inference_mode():
                    step = config.batch_size
                    batches = [
                        checkpoint.transform(torch.from_numpy(calibration[i : i + step]))
                        for i in range(0, len(calibration), step)
                    ]
            network = InferenceNetwork(
                checkpoint.model,
                self.device,
                amp_dtype=self.amp_dtype,
                channels_last=self.channels_last,
                fold=config.fold_batch_norm,
                calibration=batches,
            )
            self.members.append((network, checkpoint.transform, checkpoint.temperature))
        self.network = self.members[0][0]
        self.model = self.network.model
        self.transform = self.members[0][1]

    @property
    def transform_in_readers(self) -> bool:
        """On CPU the reader threads apply the transform image by image, in parallel with
        the network; on GPU the device does.  A committee transforms on the device (its
        members may use different transforms)."""
        return self.device.type == "cpu" and self.committee is None

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The checkpoint's transform of one (band, y, x) image (float32)."""
        with torch.inference_mode():
            return self.transform(torch.from_numpy(image)[None])[0].numpy()

    def logits(self, images: np.ndarray, *, transformed: bool = False) -> np.ndarray:
        """Logit difference (lens minus non-lens), float64, calibrated (divided by the
        temperature), for a float32 batch of fluxes (or of transformed images when
        ``transformed``); a committee's combined logit."""
        x = torch.from_numpy(images)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        z = []
        with torch.inference_mode():
            for network, transform, temperature in self.members:
                # the transform runs in float32, outside autocast, once for all the views
                t = x if transformed else transform(x)
                views = [
                    network.logit_difference(v).cpu().numpy().astype(np.float64) / temperature
                    for v in dihedral_views(t, self.symmetries)
                ]
                z.append(views[0] if len(views) == 1 else combine_logits(views, _MEAN))
        if self.committee is None:
            return z[0]
        return self.committee.combine(np.stack(z))


# -- one chunk ------------------------------------------------------------------------------

_ENGINES: dict = {}  # one model per process (per Dask worker), keyed by checkpoint and config


def clear_engines() -> None:
    """Forget this process's cached engine (the end of a run in this process)."""
    _ENGINES.clear()


@dataclass(frozen=True)
class Job:
    """What a worker needs to score chunks of a run (pickled to Dask workers)."""

    checkpoint: str
    fingerprint: str
    config: ScoringConfig
    parts: str
    n_workers: int

    def engine(self) -> ScoringEngine:
        key = (self.fingerprint, self.config)
        if key not in _ENGINES:
            _ENGINES.clear()  # a worker keeps only the model of the current run
            loaded = load_model(self.checkpoint, map_location="cpu")
            _ENGINES[key] = ScoringEngine(loaded, self.config, self.n_workers)
        return _ENGINES[key]


def score_chunk(job: Job, objects, chunk: int) -> str:
    """Score chunk number ``chunk`` and write its part; returns the part's path."""
    path = part_path(Path(job.parts), chunk)
    if path.exists():  # a retried or duplicated task: the part is already complete
        return str(path)
    engine = job.engine()
    cfg = job.config
    shape = (len(cfg.bands), cfg.size, cfg.size)
    start = chunk * cfg.chunk_size
    rows = range(start, min(start + cfg.chunk_size, len(objects)))
    logits = np.full(len(rows), np.nan)
    errors: list = [None] * len(rows)
    with ThreadPoolExecutor(cfg.read_workers) as pool:
        early = engine.transform_in_readers
        preprocess = engine.preprocess if early else None
        for batch in read_batches(objects, rows, cfg, shape, pool, preprocess):
            good = [(row, image) for row, image, _ in batch if image is not None]
            for row, _, error in batch:
                errors[row - start] = error
            if good:
                images = np.stack([image for _, image in good])
                values = engine.logits(images, transformed=early)
                logits[[row - start for row, _ in good]] = values
    write_part(path, rows, logits, errors)
    return str(path)


def run_dask(job: Job, objects, todo, workers, scheduler, bar) -> None:
    """Score the chunks ``todo`` on a Dask cluster (local with ``workers`` processes, or the
    one at ``scheduler``), advancing the progress ``bar`` as parts finish."""
    from distributed import as_completed

    with dask_client(workers, scheduler) as client:
        [remote_objects] = client.scatter([objects], broadcast=True)
        futures = [
            client.submit(
                score_chunk,
                job,
                remote_objects,
                chunk,
                key=f"clusterlens-score-{job.fingerprint[:12]}-{chunk}",
                pure=False,
            )
            for chunk in todo
        ]
        for future in as_completed(futures):
            future.result()  # re-raises a worker's ScoringError here
            bar.update()
