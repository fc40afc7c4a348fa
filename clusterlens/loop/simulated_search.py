"""Compare selection strategies of the search loop with a real network on a simulated survey.

:func:`compare_selection` runs :class:`~clusterlens.loop.SearchProject` once per strategy on
the same survey: each iteration trains the network (:class:`NetworkTrainer`, from scratch
on the base training set plus the objects graded so far), scores the pool
(:class:`NetworkScorer`, with Monte Carlo dropout samples for ``"bald"``), opens ``k``
objects, and a :class:`~clusterlens.loop.simulate.SimulatedGrader` answers from the truth.
The result counts, after each iteration, how many objects were inspected and how many of
the survey's true lenses were found, so strategies can be compared by the inspections they
need for the same number of lenses.

The survey is any :class:`~clusterlens.datasets.LensDataset` whose labels are the truth
(for example :func:`clusterlens.mock.simulate_dataset` with a few injected lenses, or
:func:`clusterlens.datasets.write_toy_dataset`); :class:`DatasetCutouts` serves its images
to the loop as a cutout source, keyed by index.

Needs PyTorch, so :mod:`clusterlens.loop` does not import this module. (Until clusterlens
0.1 it was ``clusterlens.nets.simulated_search``, which still re-exports it.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from clusterlens.datasets import LensDataset, center_crop
from clusterlens.errors import ParameterError
from clusterlens.survey.cutouts import CutoutSource

__all__ = ["DatasetCutouts", "STRATEGIES", "compare_selection", "survey_positions"]

#: Strategies :func:`compare_selection` knows: top K by score; BALD by MC dropout; half top
#: score and half BALD (MC dropout); BALD by a deep ensemble.
STRATEGIES = ("top_k", "bald", "bald_mix", "bald_ensemble")


class DatasetCutouts(CutoutSource):
    """The images of a :class:`~clusterlens.datasets.LensDataset` as a cutout source.

    ``get`` returns image number ``int(cluster_id)`` cut about its centre to ``size``; the
    position is ignored (see :func:`survey_positions` for the made-up positions that go with
    it).  Only the dataset's bands, in its order, can be asked for.
    """

    def __init__(self, dataset: LensDataset):
        self.dataset = dataset
        self.pixel_scale = float(dataset.pixel_scale)
        self._bands = "".join(dataset.bands)

    def get(self, ra, dec, size, bands="grz", *, cluster_id=None):
        if cluster_id is None:
            raise ParameterError("DatasetCutouts.get needs the cluster_id (the image index).")
        if "".join(bands) != self._bands:
            raise ParameterError(
                f"DatasetCutouts holds bands {self._bands!r}; asked for {''.join(bands)!r}."
            )
        image, _ = self.dataset[int(cluster_id)]
        image = np.ascontiguousarray(center_crop(np.asarray(image, np.float32), int(size)))
        header = fits.Header({"BANDS": self._bands, "CLNBAD": 0, "CLBADFR": 0.0})
        return image, header


def survey_positions(dataset: LensDataset):
    """The objects table of a dataset: ``id`` = position, made-up ``ra``, ``dec`` [deg]."""
    from astropy.table import Table

    n = len(dataset)
    return Table({"id": [str(i) for i in range(n)], "ra": 0.01 * np.arange(n), "dec": np.zeros(n)})


def compare_selection(
    train_data: LensDataset,
    survey: LensDataset,
    work_dir,
    config,
    *,
    strategies=("top_k", "bald"),
    k: int = 20,
    n_iterations: int = 3,
    n_samples: int = 20,
    ensemble_size: int = 4,
    add_negatives: bool = True,
    error_rate: float = 0.0,
    val_data: LensDataset | None = None,
    seed: int = 0,
):
    """Run the search loop on ``survey`` once per strategy; return the lenses found per
    inspection.

    Parameters
    ----------
    train_data : LensDataset
        The base training set (mocks); its images must be at least the training crop.
    survey : LensDataset
        The survey; its labels (1 lens, 0 not) are the truth the simulated grader reads.
    work_dir : str or Path
        Where projects, models and scores go (reused by a rerun: trainings resume).
    config : TrainingConfig
        Training configuration of every iteration.  For ``"bald"`` the network must have
        dropout (``network_options={"dropout": 0.3, ...}``); ``"bald_ensemble"`` trains
        ``ensemble_size`` members with seeds ``config.seed + i``.
    strategies : sequence of {"top_k", "bald", "bald_mix", "bald_ensemble"}
        What to compare (``"bald_mix"``: the first half of each ``k`` by mean score, the
        rest by BALD: ``Bald(k, mix=0.5)``, see :class:`~clusterlens.loop.Bald`).
    k, n_iterations : int
        Objects inspected per iteration, and iterations.
    n_samples : int
        MC dropout draws per object for ``"bald"``.
    add_negatives : bool
        Move graded non-lenses into training negatives (so neither strategy shows the same
        non-lens twice, and BALD's uncertain non-lenses teach the network).
    error_rate : float
        Probability that the simulated grader's call is wrong.
    val_data : LensDataset, optional
        Validation set of the trainings; default: 10% of ``train_data``.
    seed : int
        Seed of the grader and of the dropout draws.

    Returns
    -------
    astropy.table.Table
        One row per strategy and iteration: ``strategy``, ``iteration``, ``inspected``
        (cumulative), ``lenses_found`` (cumulative true lenses among the inspected), and
        ``lenses_in_survey``.
    """
    from astropy.table import Table

    from clusterlens.loop.networks import NetworkScorer, NetworkTrainer
    from clusterlens.loop.project import SearchProject
    from clusterlens.loop.selection import Bald, TopK
    from clusterlens.loop.simulate import SimulatedGrader
    from clusterlens.nets.scoring import ScoringConfig
    from clusterlens.nets.uncertainty import EnsembleTrainer

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ParameterError(
            f"The 'strategies' parameter of compare_selection must list some of {STRATEGIES}. "
            f"Got {list(strategies)!r}."
        )
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    positions = survey_positions(survey)
    labels = np.asarray(survey.view_labels)
    truth = {i: "A" for i, label in zip(positions["id"], labels, strict=True) if label == 1}
    source = DatasetCutouts(survey)
    size = config.crop or train_data.image_shape[-1]
    scoring = ScoringConfig(progress=False, batch_size=64, size=size)

    def trainer(seed_offset=0):
        return NetworkTrainer(
            train_data,
            source,
            positions,
            work_dir / "train",
            config=replace(config, seed=config.seed + seed_offset),
            val_data=val_data,
        )

    selections = {
        "top_k": TopK(k),
        "bald": Bald(k),
        "bald_mix": Bald(k, mix=0.5),
        "bald_ensemble": Bald(k),
    }
    rows = []
    for strategy in strategies:
        if strategy == "bald_ensemble":
            members = [trainer(i) for i in range(ensemble_size)]
            search_trainer = EnsembleTrainer(members, work_dir / "ensembles")
            scorer = NetworkScorer(source, positions, work_dir / "scores", config=scoring)
        else:
            search_trainer = trainer()
            n = 1 if strategy == "top_k" else n_samples
            scorer = NetworkScorer(
                source, positions, work_dir / "scores", config=scoring, n_samples=n, seed=seed
            )
        project = SearchProject.create(
            work_dir / f"search_{strategy}.sqlite", positions, overwrite=True
        )
        grader = SimulatedGrader("simulated", truth, error_rate=error_rate, seed=seed)
        found: set[str] = set()
        inspected = 0
        try:
            for _ in range(n_iterations):
                number = project.iterate(search_trainer, scorer, selections[strategy])
                grader.grade(project)
                project.apply(add_negatives=add_negatives)
                selected = project.selected(number)
                inspected += len(selected)
                found |= {o for o in selected if o in truth}
                rows.append((strategy, number, inspected, len(found), len(truth)))
        finally:
            project.close()
    names = ("strategy", "iteration", "inspected", "lenses_found", "lenses_in_survey")
    return Table(rows=rows, names=names)
