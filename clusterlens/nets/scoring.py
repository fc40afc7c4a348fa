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
* ``torch.inference_mode``, batch norms folded into the convolutions, ``channels_last``; on
  GPU bf16 (fp16 where bf16 is unsupported); on CPU ``torch`` threads and, optionally, bf16
  or int8 (``precision="int8"``, calibrated on a dataset); see ``docs/scoring.md`` for what
  each measured on a Zen 5 CPU.  The classification head always runs in float32 so that
  scores keep their resolution.
* A pool of reader threads loads the next batches while the network works.
* The catalog is cut into chunks of ``chunk_size`` objects; each finished chunk is written as
  one Parquet part (temporary name, then rename) in ``<out>.parts/``.  A killed run is simply
  run again: it checks that the parts belong to the same model and catalog, skips finished
  chunks and scores the rest; the final table is assembled from exactly one part per chunk,
  so every object appears exactly once.
* ``workers > 1`` spreads the chunks over a local Dask cluster (one process and one model per
  worker); ``scheduler="tcp://host:8786"`` uses a running Dask cluster whose workers can read
  the checkpoint, the cutouts and the output folder (a shared file system).

Where it lives
--------------
This module holds :class:`Scorer`; the pieces it composes are private modules, in the order
of the data flow: ``_scoring_config`` (:class:`ScoringConfig`, :class:`ScoringError`),
``_scoring_inputs`` (catalog objects and dataset images, their checks, the reader threads),
``_runtime`` (device, precision, the prepared network; shared with training),
``_scoring_run`` (the engine, one chunk, Dask) and ``_scoring_table`` (parts, manifests and
the final table).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from clusterlens._validation import check_int
from clusterlens.errors import ParameterError
from clusterlens.nets._runtime import forward_parts
from clusterlens.nets._scoring_config import PRECISIONS, ScoringConfig, ScoringError
from clusterlens.nets._scoring_inputs import scoring_objects
from clusterlens.nets._scoring_run import Job, ScoringEngine, clear_engines, run_dask, score_chunk
from clusterlens.nets._scoring_table import (
    MANIFEST,
    SUFFIXES,
    assemble,
    done_marker,
    fingerprint,
    part_path,
    prepare_parts,
    read_scores,
    sigmoid,
    write_table,
)
from clusterlens.nets.committee import Committee, load_model
from clusterlens.nets.uncertainty import _check_n_samples, mc_dropout, sample_logits

__all__ = ["PRECISIONS", "Scorer", "ScoringConfig", "ScoringError", "forward_parts"]

# The public home of the names defined in the private modules (documentation, reprs).
ScoringConfig.__module__ = ScoringError.__module__ = __name__


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
        calibration = config.calibration
        if calibration is not None:  # Dask workers may run in another working directory
            calibration = str(Path(calibration).resolve())
        self.config = replace(config, size=int(size), calibration=calibration)

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
        With ``config.symmetries > 1`` each probability is the mean over that many
        orientations of the image.
        """
        images = self._checked_images(images)
        engine = self._engine()
        step = self.config.batch_size
        logits = [engine.logits(images[i : i + step]) for i in range(0, len(images), step)]
        return sigmoid(np.concatenate(logits)) if logits else np.zeros(0)

    def predict_samples(self, images, n_samples: int, *, seed: int = 0) -> np.ndarray:
        """Monte Carlo dropout: ``n_samples`` lens probabilities per image, shape
        ``(n_samples, n)``, for an in-memory (n, band, y, x) array of fluxes [nanomaggies].

        The network runs with its dropout layers active and batch norm in evaluation mode
        (:func:`clusterlens.nets.uncertainty.mc_dropout`); for the built-in networks the body
        runs once per batch and only the head is repeated.  A network built without dropout
        gives ``n_samples`` copies of :meth:`predict`.  The draws are reproducible for a given
        ``seed`` and batch size; torch's global random state is left as it was.
        """
        n_samples = _check_n_samples(n_samples, "Scorer.predict_samples")
        if self.config.symmetries != 1:
            raise ParameterError(
                "Scorer.predict_samples draws dropout samples of the image as it is; this "
                f"Scorer scores {self.config.symmetries} views (symmetries): make one with "
                "symmetries=1 for the samples."
            )
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
        return sigmoid(np.concatenate(draws, axis=1))

    def _engine(self) -> ScoringEngine:
        """The in-memory engine, built once (folding batch norm takes a moment)."""
        if getattr(self, "_in_memory_engine", None) is None:
            self._in_memory_engine = ScoringEngine(self.checkpoint, self.config)
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
        if out is not None and Path(out).suffix.lower() not in SUFFIXES:
            raise ParameterError(
                "The 'out' parameter of Scorer.score must end in .parquet, .fits, .csv or "
                f".ecsv. Got {str(out)!r} instead."
            )
        objects = scoring_objects(source, catalog, self.config, id_column, ra_column, dec_column)
        if len(objects) == 0:
            raise ParameterError("There is nothing to score: the catalog or dataset is empty.")
        if out is not None:
            out = Path(out)
            parts = out.with_name(out.name + ".parts")
            if out.exists() and not overwrite:
                done = done_marker(out)
                run_fingerprint = fingerprint(objects, self.model_sha256, self.config)
                if done.is_file() and json.loads(done.read_text()).get("fp") == run_fingerprint:
                    # this very scoring finished (a kill after its last write lost only the
                    # exit status): the result is complete, not an error
                    shutil.rmtree(parts, ignore_errors=True)
                    return read_scores(out)
                finished = (parts / MANIFEST).is_file() and json.loads(
                    (parts / MANIFEST).read_text()
                ).get("fingerprint") == run_fingerprint
                if not finished:
                    raise ScoringError(
                        f"{str(out)!r} exists; pass overwrite=True (--overwrite) to replace it."
                    )
            elif overwrite:
                done_marker(out).unlink(missing_ok=True)
            return self._run(objects, parts, out, workers, scheduler, overwrite, keep_parts)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="clusterlens-scores-") as tmp:
            return self._run(objects, Path(tmp) / "parts", None, workers, scheduler, False, False)

    def _run(self, objects, parts, out, workers, scheduler, overwrite, keep_parts):
        run_fingerprint = fingerprint(objects, self.model_sha256, self.config)
        prepare_parts(
            parts,
            run_fingerprint,
            len(objects),
            overwrite,
            checkpoint=self.path,
            model_sha256=self.model_sha256,
            config=self.config,
        )
        n_chunks = -(-len(objects) // self.config.chunk_size)
        todo = [c for c in range(n_chunks) if not part_path(parts, c).exists()]
        n_workers = 1 if scheduler is None and workers == 1 else workers
        job = Job(str(self.path.resolve()), run_fingerprint, self.config, str(parts), n_workers)
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
                        score_chunk(job, objects, chunk)
                        bar.update()
                finally:
                    clear_engines()
            elif todo:
                run_dask(job, objects, todo, workers, scheduler, bar)
        table = assemble(objects, parts, n_chunks, self.config.chunk_size)
        from clusterlens._provenance import provenance

        table.meta.update(provenance(model_sha256=self.model_sha256))
        if out is not None:
            write_table(table, out)
            from clusterlens._io import atomic_write_bytes

            atomic_write_bytes(done_marker(out), json.dumps({"fp": run_fingerprint}).encode())
            if not keep_parts:
                shutil.rmtree(parts, ignore_errors=True)
        return table
