"""Scoring a survey: run a trained lens finder over a catalog of cutouts, resumably.

:class:`Scorer` takes a checkpoint (:func:`~clusterlens.nets.save_checkpoint`) and scores

* a catalog (astropy Table with id, RA, Dec) of objects whose cutouts come from any
  :class:`~clusterlens.survey.CutoutSource` (for example the FITS folder written by
  ``clusterlens fetch``), or
* a :class:`~clusterlens.datasets.LensDataset` (id = the dataset index),

and writes a table ``id, ra, dec, score, logit`` sorted by decreasing score.  ``score`` is the
network's lens probability (softmax of the two logits) and ``logit`` the difference of the
logits, ``log(score / (1 - score))``, which keeps ranking top candidates after the
probability has rounded to 1.

How it runs
-----------
* The checkpoint's own input transform is applied (never another one), the images are cut to
  the side the network was trained on (the checkpoint's training crop), and every batch is
  checked for NaN/inf pixels and for its shape before the network sees it.
* ``torch.inference_mode``; on GPU bf16 autocast (fp16 where bf16 is unsupported) and
  ``channels_last``; on CPU ``torch`` threads, channels_last and, optionally, bf16 autocast
  (see ``docs/scoring.md`` for what each measured on a Zen 5 CPU).  The classification head
  always runs in float32 so that scores keep their resolution.
* A pool of reader threads loads the next batches while the network works.
* The catalog is cut into chunks of ``chunk_size`` objects; each finished chunk is written as
  one Parquet part (temporary name, then rename) in ``<out>.parts/``.  A killed run is simply
  run again: it checks that the parts belong to the same model and catalog, skips finished
  chunks and scores the rest; the final table is assembled from exactly one part per chunk,
  so every object appears exactly once.
* ``workers > 1`` spreads the chunks over a local Dask cluster (one process and one model per
  worker); ``scheduler="tcp://host:8786"`` uses a running Dask cluster whose workers can read
  the checkpoint, the cutouts and the output folder (a shared file system).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from clusterlens._dask import dask_client
from clusterlens._validation import check_int
from clusterlens.datasets import LensDataset, center_crop
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.nets.committee import Committee, load_model
from clusterlens.survey.catalogs import find_column

__all__ = ["PRECISIONS", "Scorer", "ScoringConfig", "ScoringError", "forward_parts"]

#: Accepted values of :attr:`ScoringConfig.precision`.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_ERRORS = ("raise", "skip")
_MANIFEST = "manifest.json"
_SUFFIXES = {".parquet": "parquet", ".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".fits": "fits"}


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
    precision : {"auto", "fp32", "bf16", "fp16"}
        Autocast dtype of the network body; ``"auto"``: bf16 on CUDA (fp16 if the GPU lacks
        bf16), fp32 on CPU.  bf16 on CPU is an option (faster on CPUs with bf16 units;
        scores agree with fp32 to about 1e-2, see ``docs/scoring.md``).
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

    def __post_init__(self):
        for name in ("batch_size", "chunk_size", "size", "threads", "read_workers", "read_ahead"):
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


def _resolve_device(name: str) -> torch.device:
    # The trainer's device rules ("auto", a clear error when CUDA is missing), shared.
    from clusterlens.nets.training import Trainer

    return Trainer._device(name)


def _autocast_dtype(precision: str, device: torch.device):
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def forward_parts(model: torch.nn.Module, x: torch.Tensor, *, amp_dtype=None):
    """(features, logits) of ``model`` on the transformed batch ``x``.

    Networks with ``features`` and ``head`` (the built-in ones) run their body under
    autocast ``amp_dtype`` and their head in float32, so the logits keep float32
    resolution; timm models use ``forward_features``/``forward_head``; any other network
    runs whole and its features are ``None``.
    """

    def autocast():
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(x.device.type, dtype=amp_dtype)

    if hasattr(model, "features") and hasattr(model, "head"):
        with autocast():
            features = model.features(x)
        features = features.float()
        return features, model.head(features).float()
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):  # timm
        with autocast():
            features = model.forward_head(model.forward_features(x), pre_logits=True)
        features = features.float()
        return features, model.get_classifier()(features).float()
    with autocast():
        return None, model(x).float()


class _FoldedNetwork(torch.nn.Module):
    """``features`` with each batch norm folded into the convolution before it, and the
    original ``head``: the same function in eval mode, with fewer passes over memory."""

    def __init__(self, features: torch.nn.Module, head: torch.nn.Module):
        super().__init__()
        self.features, self.head = features, head

    def forward(self, x):
        return self.head(self.features(x))


class _FeaturesOf(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.features(x)


def _fold_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold eval-mode batch norms into their convolutions (torch.fx); the model unchanged
    when it cannot be traced or has no ``features``/``head``."""
    if not (hasattr(model, "features") and hasattr(model, "head")):
        return model
    with warnings.catch_warnings():  # the module imports torch.utils.mkldnn (jit deprecations)
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.fx.experimental.optimization import fuse

    try:
        features = fuse(_FeaturesOf(model), inplace=False)
    except Exception:  # networks that torch.fx cannot trace run unfolded
        return model
    return _FoldedNetwork(features, model.head)


class _Engine:
    """A model (or a committee of models) on a device, ready to turn (batch, band, y, x)
    fluxes into calibrated logits."""

    def __init__(self, loaded, config: ScoringConfig, n_workers: int = 1):
        self.device = _resolve_device(config.device)
        if self.device.type == "cpu" and (config.threads or n_workers > 1):
            # Several worker processes on one machine share its cores.
            torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // n_workers))
        self.amp_dtype = _autocast_dtype(config.precision, self.device)
        # Measured (benchmarks/bench_scoring.py): faster on GPU, and on a Zen 5 CPU by ~20%
        # in fp32 and ~35% in bf16.
        self.channels_last = True if config.channels_last is None else config.channels_last
        checkpoints = loaded.members if isinstance(loaded, Committee) else [loaded]
        self.committee = loaded if isinstance(loaded, Committee) else None
        self.members = []
        for checkpoint in checkpoints:
            model = checkpoint.model.to(self.device).eval()
            if config.fold_batch_norm:
                model = _fold_batch_norm(model)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
            self.members.append((model, checkpoint.transform, checkpoint.temperature))
        self.model = self.members[0][0]
        self.transform = self.members[0][1]

    @property
    def transform_in_readers(self) -> bool:
        """On CPU the reader threads apply the transform image by image, in parallel with
        the network (torch's elementwise asinh is slow on one core); on GPU the device does.
        A committee transforms on the device (its members may use different transforms)."""
        return self.device.type == "cpu" and self.committee is None

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The checkpoint's transform of one (band, y, x) image (float32)."""
        with torch.inference_mode():
            return self.transform(torch.from_numpy(image)[None])[0].numpy()

    def _member_logits(self, model, transform, x, transformed):
        with torch.inference_mode():
            if not transformed:
                x = transform(x)  # float32, outside autocast
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            _, logits = forward_parts(model, x, amp_dtype=self.amp_dtype)
            diff = logits[:, 1] - logits[:, 0]
        return diff.cpu().numpy().astype(np.float64)

    def logits(self, images: np.ndarray, *, transformed: bool = False) -> np.ndarray:
        """Logit difference (lens minus non-lens), float64, calibrated (divided by the
        temperature), for a float32 batch of fluxes (or of transformed images when
        ``transformed``); a committee's combined logit."""
        x = torch.from_numpy(images)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        z = [
            self._member_logits(model, transform, x, transformed) / temperature
            for model, transform, temperature in self.members
        ]
        if self.committee is None:
            return z[0]
        return self.committee.combine(np.stack(z))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


# -- what is scored ---------------------------------------------------------------------------


class _CatalogObjects:
    """Objects of a catalog whose cutouts come from a CutoutSource (pickles to workers)."""

    kind = "catalog"

    def __init__(self, source, ids, ra, dec, size, bands):
        self.source, self.ids, self.ra, self.dec = source, ids, ra, dec
        self.size, self.bands = size, bands

    def __len__(self):
        return len(self.ids)

    def describe(self, row: int) -> str:
        name = self.ids[row].item() if isinstance(self.ids[row], np.generic) else self.ids[row]
        return f"object {name} (RA={self.ra[row]:.6f}, Dec={self.dec[row]:.6f})"

    def load(self, row: int) -> np.ndarray:
        image, _ = self.source.get(
            float(self.ra[row]),
            float(self.dec[row]),
            self.size,
            self.bands,
            cluster_id=self.ids[row].item()
            if isinstance(self.ids[row], np.generic)
            else self.ids[row],
        )
        return np.asarray(image, dtype=np.float32)


class _DatasetObjects:
    """Images of a LensDataset, cut to ``size`` about their centre."""

    kind = "dataset"

    def __init__(self, path, indices, ra, dec, size, allow_incomplete):
        self.path, self.ids, self.ra, self.dec = Path(path), indices, ra, dec
        self.size, self.allow_incomplete = size, allow_incomplete
        self._images = None

    def __getstate__(self):
        return {**self.__dict__, "_images": None}

    def __len__(self):
        return len(self.ids)

    def describe(self, row: int) -> str:
        return f"image {int(self.ids[row])} of the dataset {str(self.path)!r}"

    def load(self, row: int) -> np.ndarray:
        if self._images is None:
            self._images = LensDataset(self.path, allow_incomplete=self.allow_incomplete).images
        try:
            image = np.asarray(self._images[int(self.ids[row])], dtype=np.float32)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # zarr/numcodecs name no image in their decode errors
            raise ScoringError(
                f"{self.describe(row).capitalize()} cannot be read (a corrupt chunk?): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        return np.ascontiguousarray(center_crop(image, self.size))


def _check_image(image: np.ndarray, objects, row: int, shape: tuple) -> None:
    if image.shape != shape:
        raise ScoringError(
            f"The cutout of {objects.describe(row)} has shape {image.shape}; the network "
            f"needs {shape} (band, y, x). Give the source the right size or bands."
        )
    bad = ~np.isfinite(image)
    if bad.any():
        b, y, x = (int(v) for v in np.argwhere(bad)[0])
        raise ScoringError(
            f"The cutout of {objects.describe(row)} has {int(bad.sum())} NaN/inf pixel(s), "
            f"the first in plane {b} at (y, x) = ({y}, {x}). Repair them (e.g. "
            "FitsDirectoryCutouts(nan_policy='fill')) or drop the object."
        )


# -- one chunk ------------------------------------------------------------------------------

_ENGINES: dict = {}  # one model per process (per Dask worker), keyed by checkpoint and config


@dataclass(frozen=True)
class _Job:
    checkpoint: str
    fingerprint: str
    config: ScoringConfig
    parts: str
    n_workers: int

    def engine(self) -> _Engine:
        key = (self.fingerprint, self.config)
        if key not in _ENGINES:
            _ENGINES.clear()  # a worker keeps only the model of the current run
            loaded = load_model(self.checkpoint, map_location="cpu")
            _ENGINES[key] = _Engine(loaded, self.config, self.n_workers)
        return _ENGINES[key]


def _part_path(parts: Path, chunk: int) -> Path:
    return parts / f"part-{chunk:07d}.parquet"


def _batches(objects, rows, config: ScoringConfig, shape, pool, preprocess=None):
    """Yield (rows, images or None, errors) batches, reading ``read_ahead`` batches ahead;
    ``preprocess`` (if given) is applied to each checked image in the reader thread."""

    def load(row):
        try:
            image = objects.load(row)
            _check_image(image, objects, row, shape)
            return (image if preprocess is None else preprocess(image)), None
        except ClusterlensError as exc:
            if config.on_error == "raise":
                if isinstance(exc, ScoringError):
                    raise
                raise ScoringError(f"Cannot score {objects.describe(row)}: {exc}") from exc
            return None, f"{type(exc).__name__}: {exc}"

    pending = collections.deque()
    todo = iter(rows)
    limit = config.batch_size * config.read_ahead

    def fill():
        while len(pending) < limit:
            row = next(todo, None)
            if row is None:
                return
            pending.append((row, pool.submit(load, row)))

    fill()
    while pending:
        batch = [pending.popleft() for _ in range(min(config.batch_size, len(pending)))]
        fill()
        yield [(row, *future.result()) for row, future in batch]


def _score_chunk(job: _Job, objects, chunk: int) -> str:
    """Score chunk number ``chunk`` and write its part; returns the part's path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clusterlens._io import atomic_path

    path = _part_path(Path(job.parts), chunk)
    if path.exists():  # a retried or duplicated task: the part is already complete
        return str(path)
    engine = job.engine()
    cfg = job.config
    size = cfg.size
    shape = (len(cfg.bands), size, size)
    start = chunk * cfg.chunk_size
    rows = range(start, min(start + cfg.chunk_size, len(objects)))
    logits = np.full(len(rows), np.nan)
    errors: list = [None] * len(rows)
    with ThreadPoolExecutor(cfg.read_workers) as pool:
        early = engine.transform_in_readers
        preprocess = engine.preprocess if early else None
        for batch in _batches(objects, rows, cfg, shape, pool, preprocess):
            good = [(row, image) for row, image, _ in batch if image is not None]
            for row, _, error in batch:
                errors[row - start] = error
            if good:
                images = np.stack([image for _, image in good])
                values = engine.logits(images, transformed=early)
                logits[[row - start for row, _ in good]] = values
    table = pa.table(
        {
            "row": pa.array(np.asarray(rows, dtype=np.int64)),
            "logit": pa.array(logits),
            "error": pa.array(errors, type=pa.string()),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return str(path)


# -- the scorer -----------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Scorer:
    """Score cutouts or datasets with a trained lens finder.

    Parameters
    ----------
    checkpoint : str or Path
        A checkpoint written by training (``RUN/best.pt``) or a committee manifest (``*.json``,
        :mod:`clusterlens.nets.committee`).  It is read here, so a missing, corrupt or
        foreign file fails at once with :class:`~clusterlens.nets.CheckpointError`.  Scores
        are calibrated when the checkpoint (or manifest) holds a temperature.
    config : ScoringConfig, optional
        Batch size, chunk size, device, precision, readers...  (defaults: see
        :class:`ScoringConfig`).
    **overrides
        Fields of :class:`ScoringConfig` to change, e.g. ``batch_size=128``.

    Attributes
    ----------
    checkpoint : LoadedCheckpoint or Committee
        The model and its input transform (or the committee of them).
    config : ScoringConfig
        The configuration, with ``size`` resolved from the checkpoint.

    Examples
    --------
    >>> scorer = Scorer("runs/case1/best.pt")                        # doctest: +SKIP
    >>> table = scorer.score(FitsDirectoryCutouts("cutouts"), catalog,
    ...                      out="scores.parquet", workers=4)         # doctest: +SKIP
    """

    def __init__(self, checkpoint, config: ScoringConfig | None = None, **overrides):
        config = config if config is not None else ScoringConfig()
        if not isinstance(config, ScoringConfig):
            raise ParameterError(
                "The 'config' parameter of Scorer must be a ScoringConfig. "
                f"Got {type(config).__name__} instead."
            )
        config = replace(config, **overrides)
        self.path = Path(checkpoint)
        self.checkpoint = load_model(self.path, map_location="cpu")
        self.model_sha256 = _sha256_file(self.path)
        trained_crop = self.checkpoint.crop
        size = config.size if config.size is not None else trained_crop
        if size is None:
            raise ParameterError(
                f"The checkpoint {self.path} was trained without a crop, so the image size "
                "it expects is unknown: pass size=<pixels> (--size), the side of its "
                "training images."
            )
        if trained_crop is not None and size != trained_crop:
            raise ParameterError(
                f"The 'size' parameter of Scorer is {size} pixels but the network was trained "
                f"on {trained_crop} x {trained_crop} cutouts; score at the training size."
            )
        n_channels = self.checkpoint.in_channels
        if len(config.bands) != n_channels:
            raise ParameterError(
                f"The 'bands' parameter of Scorer ({config.bands!r}) must name the "
                f"{n_channels} bands the network takes."
            )
        self.config = replace(config, size=int(size))

    def __repr__(self) -> str:
        if isinstance(self.checkpoint, Committee):
            what = repr(self.checkpoint)
        else:
            what = self.checkpoint.state["network"]["name"]
        return f"Scorer({str(self.path)!r}: {what}, size={self.config.size})"

    # -- in memory ----------------------------------------------------------------------
    def predict(self, images) -> np.ndarray:
        """Lens probabilities for an in-memory (n, band, y, x) array of fluxes [nanomaggies].

        Images must already have the network's side (``config.size``) and finite pixels.
        """
        images = self._checked_images(images)
        engine = self._engine()
        step = self.config.batch_size
        logits = [engine.logits(images[i : i + step]) for i in range(0, len(images), step)]
        return _sigmoid(np.concatenate(logits)) if logits else np.zeros(0)

    def predict_samples(self, images, n_samples: int, *, seed: int = 0) -> np.ndarray:
        """Monte Carlo dropout: ``n_samples`` lens probabilities per image, shape
        ``(n_samples, n)``, for an in-memory (n, band, y, x) array of fluxes [nanomaggies].

        The network runs with its dropout layers active and batch norm in evaluation mode
        (:func:`clusterlens.nets.uncertainty.mc_dropout`); for the built-in networks the body
        runs once per batch and only the head is repeated.  A network built without dropout
        gives ``n_samples`` copies of :meth:`predict`.  The draws are reproducible for a given
        ``seed`` and batch size; torch's global random state is left as it was.
        """
        from clusterlens.nets.uncertainty import _check_n_samples, mc_dropout, sample_logits

        n_samples = _check_n_samples(n_samples, "Scorer.predict_samples")
        if isinstance(self.checkpoint, Committee):
            raise ParameterError(
                "Scorer.predict_samples draws Monte Carlo dropout samples of one network; "
                "this is a committee (score its members one by one, or use predict)."
            )
        images = self._checked_images(images)
        engine = self._engine()
        step = self.config.batch_size
        cuda = [engine.device.index or 0] if engine.device.type == "cuda" else []
        draws = []
        with mc_dropout(engine.model), torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            for i in range(0, len(images), step):
                x = torch.from_numpy(images[i : i + step]).to(engine.device)
                with torch.inference_mode():
                    x = engine.transform(x)
                    if engine.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    z = sample_logits(engine.model, x, n_samples, amp_dtype=engine.amp_dtype)
                draws.append(z.cpu().numpy().astype(np.float64) / self.checkpoint.temperature)
        if not draws:
            return np.zeros((n_samples, 0))
        return _sigmoid(np.concatenate(draws, axis=1))

    def _engine(self) -> _Engine:
        """The in-memory engine, built once (folding batch norm takes a moment)."""
        if getattr(self, "_in_memory_engine", None) is None:
            self._in_memory_engine = _Engine(self.checkpoint, self.config)
        return self._in_memory_engine

    def _checked_images(self, images) -> np.ndarray:
        try:
            images = np.ascontiguousarray(images, dtype=np.float32)
        except (TypeError, ValueError):
            raise ScoringError(
                "The images must be a numeric (n, band, y, x) array of fluxes [nanomaggies]. "
                f"Got {type(images).__name__} that is not numeric."
            ) from None
        shape = (len(self.config.bands), self.config.size, self.config.size)
        if images.ndim != 4 or images.shape[1:] != shape:
            raise ScoringError(
                f"The images have shape {images.shape}; the network needs (n, *{shape})."
            )
        if not np.isfinite(images).all():
            raise ScoringError(f"{int((~np.isfinite(images)).sum())} pixels are NaN/inf.")
        return images

    # -- surveys and datasets -------------------------------------------------------------
    def _objects(self, source, catalog, id_column, ra_column, dec_column):
        from clusterlens.survey.cutouts import CutoutSource, FitsDirectoryCutouts

        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if (path / "zarr.json").is_file():
                source = LensDataset(path)
            elif path.is_dir():
                source = FitsDirectoryCutouts(path)
            else:
                raise ParameterError(
                    "The 'source' parameter of Scorer.score must be a cutout source, a "
                    f"dataset or an existing folder. Got {str(source)!r} instead."
                )
        size = self.config.size
        if isinstance(source, LensDataset):
            if source.image_shape[-1] < size or source.image_shape[-2] < size:
                raise ScoringError(
                    f"The dataset {str(source.path)!r} holds {source.image_shape[-2]} x "
                    f"{source.image_shape[-1]} images, smaller than the {size} x {size} "
                    "the network needs."
                )
            if source.image_shape[0] != len(self.config.bands):
                raise ScoringError(
                    f"The dataset {str(source.path)!r} has {source.image_shape[0]} bands; the "
                    f"network takes {len(self.config.bands)}."
                )
            params = source.params
            nan = np.full(len(source), np.nan)
            ra = np.asarray(params["ra"], float) if "ra" in params.colnames else nan
            dec = np.asarray(params["dec"], float) if "dec" in params.colnames else nan
            return _DatasetObjects(source.path, source.indices, ra, dec, size, not source.complete)
        if not isinstance(source, CutoutSource):
            raise ParameterError(
                "The 'source' parameter of Scorer.score must be a CutoutSource, a LensDataset "
                f"or a folder. Got {type(source).__name__} instead."
            )
        if catalog is None:
            raise ParameterError(
                "Scoring a cutout source needs a 'catalog' (a table with id, ra and dec)."
            )
        id_column = find_column(catalog, id_column, "id", "the id_column parameter")
        ra_column = find_column(catalog, ra_column, "ra", "the ra_column parameter")
        dec_column = find_column(catalog, dec_column, "dec", "the dec_column parameter")
        ids = np.asarray(catalog[id_column])
        if len(set(ids.tolist())) != len(ids):
            raise ParameterError(f"The catalog's {id_column!r} column has duplicate values.")
        return _CatalogObjects(
            source,
            ids,
            np.asarray(catalog[ra_column], dtype=float),
            np.asarray(catalog[dec_column], dtype=float),
            size,
            self.config.bands,
        )

    def _fingerprint(self, objects) -> str:
        digest = hashlib.sha256()
        digest.update(self.model_sha256.encode())
        digest.update(
            json.dumps(
                {
                    "kind": objects.kind,
                    "n": len(objects),
                    "size": self.config.size,
                    "bands": self.config.bands,
                    "chunk_size": self.config.chunk_size,
                }
            ).encode()
        )
        digest.update("\x1f".join(str(i) for i in np.asarray(objects.ids).tolist()).encode())
        digest.update(np.ascontiguousarray(objects.ra, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(objects.dec, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def _prepare_parts(self, parts: Path, fingerprint: str, n_objects: int, overwrite: bool):
        from clusterlens._io import atomic_write_bytes

        manifest = {
            "fingerprint": fingerprint,
            "checkpoint": str(self.path.resolve()),
            "model_sha256": self.model_sha256,
            "n_objects": n_objects,
            "config": asdict(self.config),
        }
        if parts.exists() and overwrite:
            shutil.rmtree(parts)
        if (parts / _MANIFEST).is_file():
            saved = json.loads((parts / _MANIFEST).read_text())
            if saved.get("fingerprint") != fingerprint:
                raise ScoringError(
                    f"{str(parts)!r} holds the parts of another scoring run (another model, "
                    "catalog, image size or chunk size). Delete it, pass overwrite=True "
                    "(--overwrite), or choose another output."
                )
        else:
            parts.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(parts / _MANIFEST, json.dumps(manifest, indent=1).encode())

    def score(
        self,
        source,
        catalog=None,
        *,
        out=None,
        workers: int = 1,
        scheduler: str | None = None,
        overwrite: bool = False,
        keep_parts: bool = False,
        id_column: str | None = None,
        ra_column: str | None = None,
        dec_column: str | None = None,
    ):
        """Score every object and return (and write) the sorted scores table.

        Parameters
        ----------
        source : CutoutSource, LensDataset, or path
            Where the images come from; a path is a dataset directory or a folder of FITS
            cutouts (:class:`~clusterlens.survey.FitsDirectoryCutouts`).
        catalog : astropy Table, optional
            The objects to score (needed for a cutout source): an id column
            (``id``/``cluster_id``/``CLUSTER_ID``) and ``ra``/``dec`` [deg]; for a dataset,
            ids are its indices and RA/Dec come from its ``ra``/``dec`` parameters (NaN
            otherwise).
        out : str or Path, optional
            The table to write (``.parquet``, ``.fits``, ``.csv`` or ``.ecsv``), atomically;
            finished chunks are kept in ``<out>.parts/`` until the table is written, so a
            killed run resumes.  None: parts go to a temporary folder, nothing is kept.
        workers : int
            1: score in this process; n > 1: a local Dask cluster of n processes, one model
            each.
        scheduler : str, optional
            Address of a running Dask scheduler to use instead (``workers`` is then ignored).
        overwrite : bool
            Discard parts of an earlier run at ``out`` and an existing ``out``.
        keep_parts : bool
            Keep ``<out>.parts/`` after writing the table.
        id_column, ra_column, dec_column : str, optional
            Catalog column names, when not among the usual ones.

        Returns
        -------
        astropy.table.Table
            ``id``, ``ra``, ``dec`` [deg], ``score`` (lens probability), ``logit``
            (``log(score / (1 - score))``), sorted by decreasing score (ties in catalog
            order); objects that failed (``on_error="skip"``) last, with NaN scores and an
            ``error`` column.
        """
        workers = check_int(workers, "workers", "Scorer.score", low=1)
        if out is not None and Path(out).suffix.lower() not in _SUFFIXES:
            raise ParameterError(
                "The 'out' parameter of Scorer.score must end in .parquet, .fits, .csv or "
                f".ecsv. Got {str(out)!r} instead."
            )
        objects = self._objects(source, catalog, id_column, ra_column, dec_column)
        if len(objects) == 0:
            raise ParameterError("There is nothing to score: the catalog or dataset is empty.")
        if out is not None:
            out = Path(out)
            parts = out.with_name(out.name + ".parts")
            if out.exists() and not overwrite:
                done = _done_marker(out)
                fingerprint = self._fingerprint(objects)
                if done.is_file() and json.loads(done.read_text()).get("fp") == fingerprint:
                    # this very scoring finished (a kill after its last write lost only the
                    # exit status): the result is complete, not an error
                    shutil.rmtree(parts, ignore_errors=True)
                    return _read_scores(out)
                finished = (parts / _MANIFEST).is_file() and json.loads(
                    (parts / _MANIFEST).read_text()
                ).get("fingerprint") == fingerprint
                if not finished:
                    raise ScoringError(
                        f"{str(out)!r} exists; pass overwrite=True (--overwrite) to replace it."
                    )
            elif overwrite:
                _done_marker(out).unlink(missing_ok=True)
            return self._run(objects, parts, out, workers, scheduler, overwrite, keep_parts)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="clusterlens-scores-") as tmp:
            return self._run(objects, Path(tmp) / "parts", None, workers, scheduler, False, False)

    def _run(self, objects, parts, out, workers, scheduler, overwrite, keep_parts):
        fingerprint = self._fingerprint(objects)
        self._prepare_parts(parts, fingerprint, len(objects), overwrite)
        n_chunks = -(-len(objects) // self.config.chunk_size)
        todo = [c for c in range(n_chunks) if not _part_path(parts, c).exists()]
        n_workers = 1 if scheduler is None and workers == 1 else workers
        job = _Job(str(self.path.resolve()), fingerprint, self.config, str(parts), n_workers)
        from clusterlens._progress import progress

        with progress(
            total=n_chunks,
            initial=n_chunks - len(todo),
            desc="scoring",
            unit="chunk",
            disable=not self.config.progress,
        ) as bar:
            if todo and scheduler is None and workers == 1:
                try:
                    for chunk in todo:
                        _score_chunk(job, objects, chunk)
                        bar.update()
                finally:
                    _ENGINES.clear()
            elif todo:
                _run_dask(job, objects, todo, workers, scheduler, bar)
        table = _assemble(objects, parts, n_chunks, self.config.chunk_size)
        from clusterlens._provenance import provenance

        table.meta.update(provenance(model_sha256=self.model_sha256))
        if out is not None:
            _write_table(table, out)
            from clusterlens._io import atomic_write_bytes

            atomic_write_bytes(_done_marker(out), json.dumps({"fp": fingerprint}).encode())
            if not keep_parts:
                shutil.rmtree(parts, ignore_errors=True)
        return table


def _run_dask(job, objects, todo, workers, scheduler, bar):
    from distributed import as_completed

    with dask_client(workers, scheduler) as client:
        [remote_objects] = client.scatter([objects], broadcast=True)
        futures = [
            client.submit(
                _score_chunk,
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


def _assemble(objects, parts: Path, n_chunks: int, chunk_size: int):
    """One table from exactly one part per chunk; checks that no object is missing or twice."""
    import pyarrow.parquet as pq
    from astropy.table import Table

    rows, logits, errors = [], [], []
    for chunk in range(n_chunks):
        path = _part_path(parts, chunk)
        try:
            part = pq.read_table(path)
        except Exception as exc:  # a missing or damaged part
            raise ScoringError(f"The part {str(path)!r} cannot be read ({exc}); rerun.") from exc
        expected = np.arange(chunk * chunk_size, min((chunk + 1) * chunk_size, len(objects)))
        got = part.column("row").to_numpy()
        if not np.array_equal(got, expected):
            raise ScoringError(f"The part {str(path)!r} does not hold chunk {chunk}; rerun.")
        rows.append(got)
        logits.append(part.column("logit").to_numpy(zero_copy_only=False))
        errors.extend(part.column("error").to_pylist())
    rows, logit = np.concatenate(rows), np.concatenate(logits)
    if rows.size != len(objects) or np.unique(rows).size != rows.size:
        raise ScoringError("The parts do not cover every object exactly once; rerun.")
    # Decreasing score; NaN (failed objects) last; ties keep the catalog order.
    order = np.lexsort((rows, -np.nan_to_num(logit, nan=0.0), np.isnan(logit)))
    rows, logit = rows[order], logit[order]
    table = Table()
    table["id"] = np.asarray(objects.ids)[rows]
    table["ra"] = np.asarray(objects.ra, dtype=float)[rows]
    table["dec"] = np.asarray(objects.dec, dtype=float)[rows]
    table["score"] = _sigmoid(logit)
    table["logit"] = logit
    table["ra"].unit = table["dec"].unit = "deg"
    if any(e is not None for e in errors):
        table["error"] = [errors[r] or "" for r in rows]
    table.meta["n_failed"] = int(np.isnan(logit).sum())
    return table


def _done_marker(out: Path) -> Path:
    """Beside a scores table: the fingerprint of the scoring that wrote it, so that a rerun
    of the same scoring knows the table is its complete result."""
    return out.with_name(f".{out.name}.done.json")


def _read_scores(out: Path):
    from astropy.table import Table

    if out.suffix.lower() != ".parquet":
        return Table.read(out, format=_SUFFIXES[out.suffix.lower()])
    import pyarrow.parquet as pq  # astropy's parquet reader needs pandas; pyarrow does not

    from clusterlens._provenance import restore_parquet_metadata

    data = pq.read_table(out)
    table = Table()
    for name in data.column_names:
        values = data.column(name).to_numpy(zero_copy_only=False)
        table[name] = values.astype(str) if values.dtype == object else values
    if {"ra", "dec"} <= set(table.colnames):
        table["ra"].unit = table["dec"].unit = "deg"
    restore_parquet_metadata(table, data.schema.metadata)
    return table


def _write_table(table, out: Path) -> None:
    from clusterlens._io import atomic_path
    from clusterlens._provenance import parquet_schema_metadata, table_for_fits

    suffix = out.suffix.lower()
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = {}
            for name in table.colnames:
                values = np.asarray(table[name])
                columns[name] = pa.array(values.tolist() if values.dtype.kind == "U" else values)
            # units and metadata as astropy's own Parquet writer stores them
            metadata = parquet_schema_metadata(table)
            pq.write_table(pa.table(columns).replace_schema_metadata(metadata), tmp)
        else:
            fits_ready = table_for_fits(table) if suffix == ".fits" else table
            fits_ready.write(tmp, format=_SUFFIXES[suffix], overwrite=True)
