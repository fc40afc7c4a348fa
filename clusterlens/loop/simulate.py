"""A simulated search: a toy survey with known lenses, a toy finder, and simulated graders.

Nothing here looks at images. :class:`ToySurvey` places every object at a point in a 2-D
"feature space" (a stand-in for a network's embedding): non-lenses fill a Gaussian cloud,
real lenses lie along a curved band whose one end resembles the simulated training lenses
(mocks) and whose other end does not, as real lenses differ from mocks. :class:`ToyFinder`
scores an object by its distance to the nearest training positive, so it finds the lenses
that look like its training set first; feeding confirmed lenses back (the paper's loop)
walks it along the band. :class:`SimulatedGrader` answers from the truth with a
configurable error rate. Together they run the whole loop without people, for tests,
demonstrations and comparing selection strategies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clusterlens._io import atomic_write_text
from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.loop.grading import GRADES

__all__ = ["ToySurvey", "ToyFinder", "SimulatedGrader", "simulate_search"]


@dataclass(frozen=True)
class ToySurvey:
    """A toy survey with known lenses.

    Parameters
    ----------
    n_objects : int
        Objects in the survey (lenses included).
    n_lenses : int
        Real lenses among them.
    n_mocks : int
        Simulated lenses in the initial training set (not in the survey).
    seed : int
        Seed of the numpy Generator that draws everything.

    Attributes
    ----------
    objects : astropy Table
        ``id``, ``ra``, ``dec``, ``z``, ``m500`` (Msun), ``r500`` (Mpc), ``shape_r``
        (arcsec), made up but in the catalogue's ranges.
    features : dict
        id (str) -> feature vector, shape (2,), for every survey object and mock.
    truth : dict
        id -> true grade ("A", "B" or "C") for lenses; non-lenses are absent.
    mock_ids : list of str
        Ids of the mocks (feature vectors only).
    """

    n_objects: int = 3000
    n_lenses: int = 150
    n_mocks: int = 40
    seed: int = 0
    objects: object = field(init=False, repr=False)
    features: dict = field(init=False, repr=False)
    truth: dict = field(init=False, repr=False)
    mock_ids: list = field(init=False, repr=False)

    def __post_init__(self):
        from astropy.table import Table

        for name in ("n_objects", "n_lenses", "n_mocks"):
            value = check_int(getattr(self, name), name, "ToySurvey", low=1)
            object.__setattr__(self, name, value)
        if self.n_lenses >= self.n_objects:
            raise ParameterError(
                "The 'n_lenses' parameter of ToySurvey must be smaller than "
                f"'n_objects' ({self.n_objects}). Got {self.n_lenses}."
            )
        rng = np.random.default_rng(self.seed)
        n, nl = self.n_objects, self.n_lenses
        feats = rng.normal(0.0, 1.0, (n, 2))
        # lenses along a half circle of radius 4: angle 0 looks like the mocks, angle pi not
        angle = rng.uniform(0.0, np.pi, nl)
        radius = 4.0 + rng.normal(0.0, 0.25, nl)
        feats[:nl] = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
        # brighter, clearer arcs near the mocks' end get better grades
        u = rng.uniform(size=nl)
        grade = np.where(u < 0.15 + 0.2 * np.cos(angle / 2), "A", np.where(u < 0.6, "B", "C"))
        order = rng.permutation(n)
        ids = [f"{100000 + i}" for i in range(n)]
        m_angle = np.abs(rng.normal(0.0, 0.15, self.n_mocks))
        mock = np.c_[4 * np.cos(m_angle), 4 * np.sin(m_angle)]
        mock_ids = [f"mock{i}" for i in range(self.n_mocks)]
        features = {ids[j]: feats[i] for j, i in enumerate(order)}
        features.update(dict(zip(mock_ids, mock, strict=True)))
        truth = {ids[j]: str(grade[i]) for j, i in enumerate(order) if i < nl}
        objects = Table(
            {
                "id": ids,
                "ra": rng.uniform(0, 360, n),
                "dec": np.degrees(np.arcsin(rng.uniform(-0.3, 0.9, n))),
                "z": rng.uniform(0.05, 0.9, n),
                "m500": 10 ** rng.uniform(13.6, 15.0, n),
                "r500": rng.uniform(0.4, 1.3, n),
                "shape_r": rng.uniform(1.0, 10.0, n),
            }
        )
        object.__setattr__(self, "objects", objects)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "truth", truth)
        object.__setattr__(self, "mock_ids", mock_ids)

    def labels(self, ids: Sequence[str]) -> np.ndarray:
        """True labels (1 lens, 0 not) of ``ids``."""
        return np.array([1 if str(i) in self.truth else 0 for i in ids], dtype=np.int8)


@dataclass
class ToyFinder:
    """A nearest-neighbour lens finder over a :class:`ToySurvey`'s features.

    Implements both the ``Trainer`` and the ``Scorer`` protocols of
    :mod:`clusterlens.loop.iteration`. Its "model" is a JSON file of training positives; the
    score is ``exp(-d / scale)`` with ``d`` the feature distance to the nearest positive.
    Training negatives push scores down by the same kernel around each negative.

    Parameters
    ----------
    survey : ToySurvey
        The survey (features and mocks).
    workdir : str or Path
        Where model files go.
    scale : float
        Kernel length in feature units.
    n_samples : int
        If > 1, :meth:`score` returns that many jittered probability samples
        ``(n_samples, n)`` (a stand-in for MC dropout) for the :class:`~clusterlens.loop.Bald`
        strategy.
    seed : int
        Seed for the jitter.
    """

    survey: ToySurvey
    workdir: str | Path
    scale: float = 0.5
    n_samples: int = 1
    seed: int = 0
    calls: int = field(default=0, init=False)

    def __post_init__(self):
        self.scale = check_scalar(self.scale, "scale", "ToyFinder", low=0, low_inclusive=False)
        Path(self.workdir).mkdir(parents=True, exist_ok=True)

    def train(self, positives, negatives, previous_model) -> str:
        """Write the model file (mocks plus the given positives and negatives)."""
        self.calls += 1
        path = Path(self.workdir) / f"model{self.calls:03d}.json"
        model = {
            "positives": list(self.survey.mock_ids) + [str(p) for p in positives],
            "negatives": [str(n) for n in negatives],
            "previous": previous_model,
        }
        atomic_write_text(path, json.dumps(model))
        return str(path)

    def score(self, model_path, object_ids) -> np.ndarray:
        """Scores in (0, 1] of ``object_ids`` under the model at ``model_path``."""
        model = json.loads(Path(model_path).read_text())
        f = self.survey.features
        x = np.array([f[str(i)] for i in object_ids]).reshape(-1, 2)
        pos = np.array([f[i] for i in model["positives"]]).reshape(-1, 2)
        d = np.min(np.linalg.norm(x[:, None, :] - pos[None, :, :], axis=2), axis=1)
        s = np.exp(-d / self.scale)
        if model["negatives"]:
            neg = np.array([f[i] for i in model["negatives"]]).reshape(-1, 2)
            dn = np.min(np.linalg.norm(x[:, None, :] - neg[None, :, :], axis=2), axis=1)
            s = s * (1 - 0.5 * np.exp(-dn / self.scale))
        if self.n_samples <= 1:
            return s
        rng = np.random.default_rng(self.seed + self.calls)
        logit = np.log(s / (1 - s + 1e-12) + 1e-12)
        noise = rng.normal(0, 1.0, (self.n_samples, s.size)) * (1 + np.abs(logit)) ** -0.5
        return 1 / (1 + np.exp(-(logit + noise)))


@dataclass
class SimulatedGrader:
    """A grader who answers from the truth, wrong with probability ``error_rate``.

    Parameters
    ----------
    name : str
        Grader name stored with each decision.
    truth : mapping
        id -> true grade ("A", "B", "C") for real lenses; other ids are non-lenses.
    error_rate : float in [0, 1]
        Probability of flipping the lens / non-lens call, and (independently) of moving a
        grade one step up or down.
    seed : int or numpy.random.Generator
        Random draws.
    """

    name: str
    truth: Mapping[str, str]
    error_rate: float = 0.0
    seed: int | np.random.Generator = 0

    def __post_init__(self):
        self.error_rate = check_scalar(
            self.error_rate, "error_rate", "SimulatedGrader", low=0, high=1
        )
        self._rng = np.random.default_rng(self.seed)

    def decide(self, object_id) -> tuple[bool, str | None]:
        """``(is_lens, grade)`` for one object."""
        true = self.truth.get(str(object_id))
        is_lens = (true is not None) != (self._rng.uniform() < self.error_rate)
        if not is_lens:
            return False, None
        if true is None:
            return True, "C"
        g = GRADES.index(true)
        if self._rng.uniform() < self.error_rate:
            g = int(np.clip(g + self._rng.choice((-1, 1)), 0, 2))
        return True, GRADES[g]

    def grade(self, project, iteration: int | None = None) -> int:
        """Decide every object selected in ``iteration`` (default: the open one).

        Each decision is its own transaction, as a person clicking through would save them.
        Returns the number of decisions written.
        """
        if iteration is None:
            iteration = project.open_iteration()
        ids = project.selected(iteration)
        for oid in ids:
            is_lens, grade = self.decide(oid)
            project.record_decision(oid, iteration, self.name, is_lens=is_lens, grade=grade)
        return len(ids)


def simulate_search(
    survey: ToySurvey,
    workdir,
    *,
    strategy: str = "top_k",
    k: int = 40,
    n_iterations: int = 5,
    n_graders: int = 1,
    error_rate: float = 0.0,
    add_negatives: bool = False,
    n_samples: int = 8,
    seed: int = 0,
):
    """Run a whole search on a toy survey with simulated graders; return its Table 2.

    The returned astropy Table is :meth:`SearchProject.table` plus ``inspected``, the
    cumulative number of objects the graders looked at, and ``true_lenses_found``, so that
    strategies can be compared by how many inspections they need for a number of lenses.

    Parameters
    ----------
    survey : ToySurvey
        The survey (truth and features).
    workdir : str or Path
        Directory for the project file (``search_<strategy>.sqlite``) and model files; an
        existing project there is replaced.
    strategy : {"top_k", "bald"}
        Selection strategy: ``TopK(k)``, or ``Bald(k)`` scored with ``n_samples`` jittered
        samples.
    k, n_iterations : int
        Objects inspected per iteration, and iterations.
    n_graders, error_rate : int, float
        Simulated graders, each wrong with probability ``error_rate``.
    add_negatives : bool
        Passed to :meth:`SearchProject.apply`.
    """
    from clusterlens.loop.project import SearchProject
    from clusterlens.loop.selection import Bald, TopK

    if strategy not in ("top_k", "bald"):
        raise ParameterError(
            "The 'strategy' parameter of simulate_search must be 'top_k' or 'bald'. "
            f"Got {strategy!r}."
        )
    selection = TopK(k) if strategy == "top_k" else Bald(k)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    finder = ToyFinder(
        survey,
        workdir / f"models_{strategy}",
        n_samples=n_samples if strategy == "bald" else 1,
        seed=seed,
    )
    project = SearchProject.create(
        workdir / f"search_{strategy}.sqlite", survey.objects, overwrite=True
    )
    graders = [
        SimulatedGrader(f"sim{i}", survey.truth, error_rate=error_rate, seed=seed + i)
        for i in range(n_graders)
    ]
    for _ in range(n_iterations):
        project.iterate(finder, finder, selection)
        for g in graders:
            g.grade(project)
        project.apply(add_negatives=add_negatives)
    table = project.table()
    table["inspected"] = np.cumsum(table["n_selected"])
    found = set()
    true_found = []
    for it in table["iteration"]:
        found |= {o for o in project.selected(int(it)) if o in survey.truth}
        true_found.append(len(found))
    table["true_lenses_found"] = true_found
    project.close()
    return table
