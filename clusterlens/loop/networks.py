"""The real network in the human-in-the-loop search: adapters for :class:`SearchProject`.

Needs PyTorch (through :mod:`clusterlens.nets`), so :mod:`clusterlens.loop` does not import
this module; import it as ``from clusterlens.loop.networks import NetworkTrainer``. (Until
clusterlens 0.1 it was ``clusterlens.nets.search``, which still re-exports it.)

:meth:`clusterlens.loop.SearchProject.iterate` needs a *trainer* (``train(positives,
negatives, previous_model) -> model path``) and a *scorer* (``score(model_path, object_ids)
-> scores``).  These classes provide both with :class:`~clusterlens.nets.Trainer` and
:class:`~clusterlens.nets.scoring.Scorer`:

* :class:`NetworkTrainer` trains on a base dataset (simulated lenses and non-lenses) plus
  the survey objects the search moved into training (their cutouts, fetched from a cutout
  source at the base images' size, labelled 1 or 0), as in Zhang et al. (2026, section 3.3);
* :class:`PretrainedModel` skips training and returns a model trained beforehand (for
  example with ``clusterlens train``);
* :class:`NetworkScorer` scores the pool with a checkpoint, resumably.

Everything they write goes into one work folder, named by what it depends on (the loop's
additions, the model file), so rerunning ``iterate`` after a kill resumes training and
scoring where they stopped instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from clusterlens.datasets import DatasetWriter, LensDataset
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.nets.scoring import Scorer, ScoringConfig
from clusterlens.nets.training import Trainer, TrainingConfig

__all__ = ["NetworkScorer", "NetworkTrainer", "PretrainedModel", "project_positions"]


def project_positions(project):
    """The ``id``, ``ra``, ``dec`` [deg] of every object of a :class:`SearchProject`
    (:meth:`SearchProject.positions <clusterlens.loop.SearchProject.positions>`), the
    ``positions`` that :class:`NetworkTrainer` and :class:`NetworkScorer` take."""
    return project.positions()


def _lookup(positions, object_ids, owner: str):
    """Rows of ``positions`` for ``object_ids`` (matched as strings), in that order."""
    for column in ("id", "ra", "dec"):
        if column not in positions.colnames:
            raise ParameterError(
                f"The 'positions' table of {owner} needs columns id, ra, dec. "
                f"Got {positions.colnames}."
            )
    row_of = {str(i): k for k, i in enumerate(positions["id"])}
    missing = [o for o in object_ids if str(o) not in row_of]
    if missing:
        raise ParameterError(
            f"{owner}: {len(missing)} object(s) have no position (e.g. {missing[:3]})."
        )
    table = positions[[row_of[str(o)] for o in object_ids]]
    bad = ~(np.isfinite(table["ra"]) & np.isfinite(table["dec"]))
    if bad.any():
        raise ParameterError(
            f"{owner}: objects without RA/Dec cannot be fetched (e.g. "
            f"{list(table['id'][bad][:3])})."
        )
    return table


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class _CombinedDataset(LensDataset):
    """Several datasets of the same image shape seen as one (a training view only)."""

    def __init__(self, parts):  # no LensDataset.__init__: nothing to open, only views
        shapes = {p.image_shape for p in parts}
        if len(shapes) != 1:
            raise ParameterError(f"The datasets to combine have different shapes {shapes}.")
        self.parts = list(parts)
        self.path = self.parts[0].path
        self.complete = True
        self.image_shape = self.parts[0].image_shape
        self.bands, self.pixel_scale = self.parts[0].bands, self.parts[0].pixel_scale
        self.attrs = self.parts[0].attrs
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])
        # Positions of the combined view: distinct, so augmentation draws differ per image.
        self.indices = np.arange(self._starts[-1], dtype=np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, k: int):
        part = int(np.searchsorted(self._starts, k, side="right")) - 1
        return self.parts[part][int(k - self._starts[part])]

    @property
    def view_labels(self) -> np.ndarray:
        return np.concatenate([p.view_labels for p in self.parts])

    def subset(self, indices):  # pragma: no cover - not used for training views
        raise NotImplementedError("A combined dataset cannot be subset.")

    def __repr__(self) -> str:
        return f"_CombinedDataset({len(self)} images from {len(self.parts)} datasets)"


class NetworkTrainer:
    """Train the lens finder for one iteration of the search (the ``Trainer`` protocol).

    Parameters
    ----------
    train_data : LensDataset or path
        The base training set (simulated lenses and non-lenses).
    source : CutoutSource
        Where the cutouts of the loop's positives and negatives come from.
    positions : astropy Table
        ``id``, ``ra``, ``dec`` [deg] of the survey objects (see :func:`project_positions`).
    work_dir : str or Path
        Folder for the runs: ``train-<hash>/additions`` (the loop's objects as a dataset)
        and ``train-<hash>/run`` (the training run; its ``best.pt`` is returned).
    config : TrainingConfig or str
        Training configuration or preset name (``"case1"``).
    val_data : LensDataset or path, optional
        Validation set; default: ``val_fraction`` of ``train_data``, stratified.
    val_fraction : float
        Fraction held out when ``val_data`` is not given (0.1).
    seed : int
        Seed of the validation split.

    Notes
    -----
    Each iteration trains from scratch on the base set plus every addition so far (the
    paper retrains); ``previous_model`` is not used.  The additions enter training only,
    never validation, so the validation AUC stays comparable between iterations.
    """

    def __init__(
        self,
        train_data,
        source,
        positions,
        work_dir,
        *,
        config: TrainingConfig | str = "case1",
        val_data=None,
        val_fraction: float = 0.1,
        seed: int = 0,
    ):
        self.train_data = train_data if isinstance(train_data, LensDataset) else None
        self.train_path = Path(train_data.path if self.train_data else train_data)
        self.val_data = val_data
        self.source = source
        self.positions = positions
        self.work_dir = Path(work_dir)
        self.config = TrainingConfig.preset(config) if isinstance(config, str) else config
        if not isinstance(self.config, TrainingConfig):
            raise ParameterError(
                "The 'config' parameter of NetworkTrainer must be a TrainingConfig or a "
                f"preset name. Got {type(config).__name__} instead."
            )
        self.val_fraction = val_fraction
        self.seed = seed

    def _additions(self, path: Path, positives, negatives, shape, bands) -> LensDataset | None:
        objects = [(str(o), 1) for o in positives] + [(str(o), 0) for o in negatives]
        if not objects:
            return None
        table = _lookup(self.positions, [o for o, _ in objects], "NetworkTrainer")
        writer = DatasetWriter(
            path,
            len(objects),
            shape,
            bands=bands,
            creator="clusterlens.loop.networks.NetworkTrainer",
        )
        for index in writer.missing():  # resumable: images already written are kept
            object_id, label = objects[index]
            image, _ = self.source.get(
                float(table["ra"][index]),
                float(table["dec"][index]),
                shape[-1],
                "".join(bands),
                cluster_id=object_id,
            )
            writer.write(int(index), image, label, {"object_id": object_id})
        return writer.finalize()

    def train(self, positives, negatives, previous_model) -> str:
        """Train on the base set plus ``positives``/``negatives``; returns ``best.pt``'s path."""
        base = self.train_data or LensDataset(self.train_path)
        if self.val_data is not None:
            train, val = base, self.val_data
            if not isinstance(val, LensDataset):
                val = LensDataset(val)
        else:
            train, val = base.split(self.val_fraction, seed=self.seed)
        key = _digest(
            str(self.train_path.resolve()),
            sorted(map(str, positives)),
            sorted(map(str, negatives)),
            self.config.to_dict(),
        )
        folder = self.work_dir / f"train-{key[:16]}"
        additions = self._additions(
            folder / "additions", positives, negatives, base.image_shape, base.bands
        )
        if additions is not None:
            train = _CombinedDataset([train, additions])
        run = folder / "run"
        Trainer(self.config, out=run, resume=True).fit(train, val)  # resumes a killed run
        best = run / "best.pt"
        if not best.exists():
            raise ClusterlensError(f"Training in {run} produced no best.pt.")
        return str(best)


class PretrainedModel:
    """A ``Trainer`` that trains nothing: every iteration uses the same checkpoint."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ParameterError(f"No model file at {str(self.path)!r}.")

    def train(self, positives, negatives, previous_model) -> str:
        return str(self.path)


class NetworkScorer:
    """Score the search's pool with a checkpoint (the ``Scorer`` protocol).

    Parameters
    ----------
    source : CutoutSource
        Where the pool's cutouts come from.
    positions : astropy Table
        ``id``, ``ra``, ``dec`` [deg] of the objects (see :func:`project_positions`).
    work_dir : str or Path, optional
        Where the scores of each (model, pool) are written as ``scores-<hash>.parquet``;
        a rerun after a kill resumes that scoring, and a finished one is read back.
        None: nothing is kept.
    config : ScoringConfig, optional
        Batch size, device, precision...
    workers : int
        Local Dask worker processes (1: this process).
    scheduler : str, optional
        Address of a running Dask scheduler.
    n_samples : int
        1: one score per object (the resumable :meth:`Scorer.score`).  More: that many
        Monte Carlo dropout draws per object and checkpoint (the network must be built with
        ``dropout > 0``), returned as ``(n_samples, n)`` probabilities for
        the :class:`~clusterlens.loop.Bald` strategy.
    seed : int
        Seed of the dropout draws.

    Notes
    -----
    A ``model_path`` that is an ensemble manifest
    (:class:`~clusterlens.nets.uncertainty.EnsembleTrainer`) is scored by every member: the
    result has one row per member (times ``n_samples``).  Sampled scores are computed in
    memory batch by batch and, with a ``work_dir``, saved as ``samples-<hash>.npy`` once
    complete (not resumed midway).
    """

    def __init__(
        self,
        source,
        positions,
        work_dir=None,
        *,
        config: ScoringConfig | None = None,
        workers: int = 1,
        scheduler: str | None = None,
        n_samples: int = 1,
        seed: int = 0,
    ):
        from clusterlens.nets.uncertainty import _check_n_samples

        self.source = source
        self.positions = positions
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.config = config or ScoringConfig()
        self.workers = workers
        self.scheduler = scheduler
        self.n_samples = _check_n_samples(n_samples, "NetworkScorer")
        self.seed = seed

    def score(self, model_path, object_ids) -> np.ndarray:
        """Lens probabilities of ``object_ids`` (in that order) under ``model_path``:
        shape ``(n,)``, or ``(n_samples, n)`` for dropout samples or an ensemble."""
        from clusterlens.nets.uncertainty import read_ensemble

        object_ids = [str(o) for o in object_ids]
        catalog = _lookup(self.positions, object_ids, "NetworkScorer")
        members = read_ensemble(model_path)
        if members is not None or self.n_samples > 1:
            return self._samples(members or [Path(model_path)], catalog)
        scorer = Scorer(model_path, self.config)
        out = None
        if self.work_dir is not None:
            key = _digest(scorer.model_sha256, object_ids)
            out = self.work_dir / f"scores-{key[:16]}.parquet"
        if out is not None and out.exists():
            import pyarrow.parquet as pq

            done = pq.read_table(out)
            ids = [str(i) for i in done.column("id").to_pylist()]
            scores = done.column("score").to_numpy()
        else:
            table = scorer.score(
                self.source, catalog, out=out, workers=self.workers, scheduler=self.scheduler
            )
            ids, scores = [str(i) for i in table["id"]], np.asarray(table["score"])
        by_id = dict(zip(ids, scores, strict=True))
        result = np.array([by_id[o] for o in object_ids], dtype=float)
        if not np.isfinite(result).all():
            raise ClusterlensError("Some objects could not be scored (NaN scores).")
        return result

    def _samples(self, checkpoints, catalog) -> np.ndarray:
        """(members x n_samples, n) probabilities of the catalog's objects, in its order."""
        from clusterlens.nets.uncertainty import has_dropout

        scorers = [Scorer(c, self.config) for c in checkpoints]
        if self.n_samples > 1 and not all(has_dropout(s.checkpoint.model) for s in scorers):
            # Identical draws would give BALD = 0 everywhere and a selection in pool order.
            raise ParameterError(
                f"NetworkScorer(n_samples={self.n_samples}) needs a network built with "
                "dropout > 0 (network_options={'dropout': 0.3}); this checkpoint has none."
            )
        ids = [str(i) for i in catalog["id"]]
        out = None
        if self.work_dir is not None:
            key = _digest([s.model_sha256 for s in scorers], ids, self.n_samples, self.seed)
            out = self.work_dir / f"samples-{key[:16]}.npy"
            if out.exists():
                return np.load(out)
        step = self.config.batch_size
        rows = []
        for start in range(0, len(ids), step):
            images = np.stack(
                [
                    self.source.get(
                        float(catalog["ra"][i]),
                        float(catalog["dec"][i]),
                        scorers[0].config.size,
                        scorers[0].config.bands,
                        cluster_id=ids[i],
                    )[0]
                    for i in range(start, min(start + step, len(ids)))
                ]
            )
            batch = []
            for scorer in scorers:
                if self.n_samples > 1:
                    seed = self.seed + start  # distinct draws per batch, reproducible
                    batch.append(scorer.predict_samples(images, self.n_samples, seed=seed))
                else:
                    batch.append(scorer.predict(images)[None])
            rows.append(np.concatenate(batch, axis=0))
        result = np.concatenate(rows, axis=1)
        if out is not None:
            from clusterlens._io import atomic_path

            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out) as tmp, open(tmp, "wb") as fh:
                np.save(fh, result)
        return result
