"""The paper's whole method, end to end, on the built-in synthetic sky: ``clusterlens demo``.

:func:`run_demo` makes a survey of synthetic cluster fields into a fraction of which
realistic mock lenses are injected (the truth), simulates a training set of mocks on *other*
fields of the same sky (the paper's section 2.2), trains a lens finder on it (section 2.3),
scores the survey, runs the human-in-the-loop search for a few iterations with simulated
graders (section 3.3, Table 2), grades the candidates (section 4.1), cross-matches them with
the truth (section 4.2) and writes one HTML report with the paper's Figures 1, 2, 4, 5, 6
and 7 and Table 2.

Every step writes its outputs atomically and records itself as done in ``OUT/steps/`` only
when all of them exist, so a killed demo resumes at the step it was in; a rerun of a
finished demo with the same options only rewrites nothing and reports. A rerun into the
same folder with other options is refused (a mix of two demos would be meaningless).

The network is a narrow ResNet-18 (1/8 of the channels) trained for a few epochs with a
learning rate suited to that: enough to find the brighter injected arcs on a CPU in
minutes, not the paper's network (full width, 200 epochs, 100,000 mocks).
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clusterlens.errors import ClusterlensError, ParameterError

if TYPE_CHECKING:  # for annotations only
    from clusterlens.mock import ClusterScene

__all__ = ["DemoConfig", "DemoResult", "run_demo", "STEPS"]

#: The steps of the demo, in order (name, what it does).
STEPS = (
    ("survey", "synthetic cluster fields with injected lenses (the truth)"),
    ("training-set", "mock lenses and non-lenses on the training fields (section 2.2)"),
    ("train", "train the lens finder (section 2.3, Figure 4)"),
    ("score", "score the survey (Figure 5)"),
    ("search", "human-in-the-loop iterations with simulated graders (Table 2, Figure 6)"),
    ("grade", "aggregate the graders' grades, export the catalog (section 4.1)"),
    ("crossmatch", "compare the candidates with the truth (section 4.2)"),
    ("report", "one HTML page with the figures (Figures 1, 2, 4-7)"),
)

_GRADERS = ("ann", "bob", "cai")


@dataclass(frozen=True)
class DemoConfig:
    """Size and options of a demo run.

    Parameters
    ----------
    n_clusters : int
        Synthetic cluster fields in all; ``train_fraction`` of them are the training fields
        (mocks and negatives are made on them), the rest is the survey that is searched.
    train_fraction : float
        Fraction of the fields used to simulate the training set.
    lens_fraction : float
        Fraction of the survey fields that get an injected lens (a field whose lens fails
        the paper's cuts stays a non-lens).
    n_train_images : int
        Training-set images (half mock lenses, half untouched training fields).
    epochs : int
        Training epochs per iteration.
    iterations : int
        Search iterations (train, score, inspect the top ``k``, apply).
    k : int or None
        Objects inspected per iteration; None: a tenth of the survey (at least 5).
    widths : tuple of int
        Channels of the four ResNet-18 stages (the paper's network: 64, 128, 256, 512).
    crop : int
        Side of the centre crop the network sees [pixels]. The paper's 223 pixels (58")
        hold the widest arcs; the demo's 111 pixels (29") hold Einstein radii up to about
        14" (most mocks: median 7.4") and train four times faster, which matters more for a
        network trained for minutes.
    lr : float
        Adam learning rate (the narrow network learns at 3e-3 within a few epochs).
    batch_size : int
        Training batch size.
    grader_error : float
        Probability that a simulated grader gets a lens / non-lens call (or a grade) wrong.
    seed : int
        Seed of everything (fields, injections, training set, training, graders).
    workers : int
        Dask worker processes for simulating the training set (0: in this process).
    threads : int
        torch CPU threads; 1 on a busy shared machine (see docs/training.md).
    cutouts, catalog, known : path or None
        Real data instead of the synthetic survey: a folder of FITS cutouts
        (``<id>.fits``), the catalog of the objects (id, ra, dec; optional z, m500 [Msun])
        and a catalog of known lenses (ra, dec; optional grade) that stands in for the
        graders and the truth. The training set is still simulated on synthetic fields.
    progress : bool
        Progress bars of the steps.
    """

    n_clusters: int = 300
    train_fraction: float = 1 / 3
    lens_fraction: float = 0.15
    n_train_images: int = 1200
    epochs: int = 20
    iterations: int = 2
    k: int | None = None
    widths: tuple[int, ...] = (8, 16, 32, 64)
    crop: int = 111
    lr: float = 3e-3
    batch_size: int = 16
    grader_error: float = 0.05
    seed: int = 0
    workers: int = 2
    threads: int = 1
    cutouts: str | None = None
    catalog: str | None = None
    known: str | None = None
    progress: bool = True

    def __post_init__(self):
        o = "DemoConfig"
        for name, low in (
            ("n_clusters", 6),
            ("n_train_images", 8),
            ("epochs", 1),
            ("iterations", 1),
            ("batch_size", 1),
            ("crop", 16),
            ("seed", 0),
            ("workers", 0),
            ("threads", 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                raise ParameterError(
                    f"The '{name}' parameter of {o} must be an integer >= {low}. Got {v!r}."
                )
        if self.k is not None and (not isinstance(self.k, int) or self.k < 1):
            raise ParameterError(
                f"The 'k' parameter of {o} must be an integer >= 1. Got {self.k!r}."
            )
        for name in ("train_fraction", "lens_fraction"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0 < v < 1):
                raise ParameterError(f"The '{name}' parameter of {o} must be in (0, 1). Got {v!r}.")
        if not (0 <= self.grader_error <= 0.5):
            raise ParameterError(
                f"The 'grader_error' parameter of {o} must be in [0, 0.5]. "
                f"Got {self.grader_error!r}."
            )
        if not (self.lr > 0):
            raise ParameterError(f"The 'lr' parameter of {o} must be > 0. Got {self.lr!r}.")
        real = [self.cutouts, self.catalog, self.known]
        if any(v is not None for v in real) and not all(v is not None for v in real):
            raise ParameterError(
                "Real data needs all of cutouts, catalog and known (a catalog of known lenses "
                "that stands in for the graders and the truth)."
            )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @classmethod
    def quick(cls, **overrides) -> DemoConfig:
        """A small demo (under a minute on two CPU cores): 60 fields, 96 training images,
        2 epochs, 2 iterations, no Dask."""
        base = {"n_clusters": 60, "n_train_images": 96, "epochs": 2, "workers": 0}
        return cls(**{**base, **overrides})

    @property
    def real(self) -> bool:
        """True when the survey is real cutouts and a catalog."""
        return self.cutouts is not None

    @property
    def n_train_fields(self) -> int:
        """Synthetic fields the training set is made on (all of them for a real survey)."""
        if self.real:
            return self.n_clusters
        return max(2, int(round(self.n_clusters * self.train_fraction)))

    def fingerprint(self) -> dict:
        """The options that decide the outputs (not workers, threads, progress)."""
        d = asdict(self)
        for name in ("workers", "threads", "progress"):
            d.pop(name)
        d["widths"] = list(self.widths)
        return d


@dataclass
class DemoResult:
    """What a demo produced: the report's path, Table 2, the cross-match and timings."""

    out: Path
    report: Path
    table: object
    summary: dict
    seconds: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- utilities


def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


class _Progress:
    """Prints ``[k/n] step: what ... (elapsed)`` lines to stderr."""

    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def elapsed(self) -> str:
        s = int(time.perf_counter() - self.start)
        return f"{s // 60:d}:{s % 60:02d}"

    def say(self, text: str) -> None:
        if self.enabled:
            print(f"[{self.elapsed()}] {text}", file=self.stream, flush=True)


def _field_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), 7, int(index)]))


def _field_scene(sky, seed: int, index: int):
    """Synthetic cluster field number ``index`` of the demo sky (deterministic)."""
    return sky.draw(_field_rng(seed, index), "lens")


class FieldPoolSky:
    """A sky that draws from a fixed list of synthetic fields (the demo's training fields).

    Mock lenses use the even fields of the pool and negatives the odd ones, so negatives
    are other clusters, as in the paper. Each field is redrawn from its seed on demand, so
    the sky is small to send to Dask workers.

    Parameters
    ----------
    config : MockConfig
    seed : int
        Seed of the fields.
    indices : sequence of int
        Field numbers of the pool (at least 2).
    """

    def __init__(self, config, seed: int, indices):
        from clusterlens.mock import SyntheticSky

        self.sky = SyntheticSky(config)
        self.config = config
        self.seed = int(seed)
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.size < 2:
            raise ParameterError("FieldPoolSky needs at least 2 fields.")
        self._pools = {"lens": self.indices[0::2], "non-lens": self.indices[1::2]}

    def draw(self, rng: np.random.Generator, role: str = "lens") -> ClusterScene:
        """A field of the pool of ``role`` (``"lens"`` or ``"non-lens"``)."""
        pool = self._pools[role]
        return _field_scene(self.sky, self.seed, int(pool[rng.integers(pool.size)]))

    def __repr__(self) -> str:
        return f"FieldPoolSky(seed={self.seed}, fields={self.indices.size})"


def _truth_grade(n_members: int, arc_snr: float) -> str:
    """The grade a careful grader would give an injected lens (the paper's A/B/C table)."""
    from clusterlens.loop import cluster_criterion, grade_from_criteria

    arc = "prominent" if arc_snr >= 50 else ("visible" if arc_snr >= 20 else "invisible")
    return grade_from_criteria(cluster_criterion(int(n_members)), arc)


# --------------------------------------------------------------------------- the demo


class _Demo:
    def __init__(self, out: Path, config: DemoConfig, progress: _Progress):
        from clusterlens.mock import MockConfig

        self.out = out
        self.config = config
        self.progress = progress
        self.mock_config = MockConfig()
        self.figures = out / "figures"
        self.steps = out / "steps"
        self.survey_dir = out / "survey"
        self.cutout_dir = self.survey_dir / "cutouts"
        self.project_path = out / "search.sqlite"
        self.work = out / "search.work"
        self.seconds: dict[str, float] = {}

    # ---- bookkeeping
    def done(self, name: str) -> dict | None:
        path = self.steps / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def mark(self, name: str, info: dict) -> None:
        _atomic_json(self.steps / f"{name}.json", info)

    def prepare(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        for d in (self.figures, self.steps):
            d.mkdir(exist_ok=True)
        state = self.out / "demo.json"
        wanted = self.config.fingerprint()
        if state.is_file():
            have = json.loads(state.read_text())
            if have != wanted:
                changed = sorted(k for k in set(have) | set(wanted) if have.get(k) != wanted.get(k))
                raise ClusterlensError(
                    f"{self.out} holds a demo made with other options ({', '.join(changed)}); "
                    "use another --out folder, or the same options to resume it."
                )
        elif any(p for p in self.out.iterdir() if p.name not in ("figures", "steps")):
            raise ClusterlensError(
                f"{self.out} is not empty and holds no demo; use an empty or new --out folder."
            )
        else:
            _atomic_json(state, wanted)

    # ---- shared objects
    def training_config(self):
        from clusterlens.nets import TrainingConfig

        c = self.config
        return TrainingConfig.preset(
            "case1",
            network="resnet18",
            network_options={"widths": list(c.widths)},
            epochs=c.epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            weight_decay=0.0,
            crop=c.crop,
            seed=c.seed,
            device="cpu",
            threads=c.threads,
            progress=c.progress,
        )

    def source(self):
        from clusterlens.survey import FitsDirectoryCutouts

        return FitsDirectoryCutouts(self.config.cutouts or self.cutout_dir)

    def objects(self):
        from astropy.table import Table

        return Table.read(self.survey_dir / "objects.ecsv")

    def truth(self):
        from astropy.table import Table

        return Table.read(self.survey_dir / "truth.ecsv")

    def project(self):
        from clusterlens.loop import SearchProject

        if self.project_path.exists():
            return SearchProject(self.project_path)
        project = SearchProject.create(self.project_path, self.objects())
        if not self.config.real:  # `clusterlens inspect` then needs no --size/--crop
            project.set_image_geometry(self.mock_config.image.crop_size, self.config.crop)
        return project

    def trainer(self, project):
        from clusterlens.datasets import LensDataset
        from clusterlens.loop.networks import NetworkTrainer, project_positions

        return NetworkTrainer(
            LensDataset(self.out / "training_set"),
            self.source(),
            project_positions(project),
            self.work,
            config=self.training_config(),
            val_fraction=0.15,
            seed=self.config.seed,
        )

    def scorer(self, project):
        from clusterlens.loop.networks import NetworkScorer, project_positions
        from clusterlens.nets.scoring import ScoringConfig

        config = ScoringConfig(
            batch_size=32, device="cpu", threads=self.config.threads, progress=False
        )
        return NetworkScorer(self.source(), project_positions(project), self.work, config=config)

    def k(self, n_survey: int) -> int:
        return self.config.k or max(5, n_survey // 10)

    # ---- steps
    def step_survey(self) -> dict:
        if self.config.real:
            return self._real_survey()
        from astropy.io import fits
        from astropy.table import Table

        from clusterlens.mock import LensRejected, MockLensSimulator, SyntheticSky, plot_mock
        from clusterlens.survey import write_cutout_fits

        c = self.config
        sky = SyntheticSky(self.mock_config)
        sim = MockLensSimulator(self.mock_config)
        n_train = c.n_train_fields
        survey = np.arange(n_train, c.n_clusters)
        order = np.random.default_rng([c.seed, 11]).permutation(survey)
        target = max(1, int(round(c.lens_fraction * survey.size)))
        self.cutout_dir.mkdir(parents=True, exist_ok=True)
        rows, truth, figure1 = [], [], None
        bar = _bar(c.progress, survey.size, "survey")
        n_lens = 0
        for index in order:
            scene = _field_scene(sky, c.seed, int(index))
            oid = f"C{int(index):05d}"
            ra = 150.0 + 0.05 * (int(index) % 40)
            dec = 2.0 + 0.05 * (int(index) // 40)
            image, params = sim.crop_cutout(scene.image), None
            if n_lens < target:
                try:
                    result = sim.simulate(scene, _field_rng(c.seed + 1, int(index)))
                except LensRejected:
                    result = None
                if result is not None:
                    image, params, n_lens = result.image, result.params, n_lens + 1
                    # Figure 1 shows the clearest injected arc (the first may be faint)
                    if figure1 is None or params["arc_snr"] > figure1.params["arc_snr"]:
                        figure1 = result
            header = fits.Header({"CRVAL1": ra, "CRVAL2": dec, "BANDS": "grz", "OBJECT": oid})
            write_cutout_fits(self.cutout_dir / f"{oid}.fits", image, header)
            rows.append((oid, ra, dec, scene.z_lens, scene.m500, scene.n_members))
            if params is not None:
                grade = _truth_grade(scene.n_members, params["arc_snr"])
                truth.append((oid, ra, dec, grade, params["einstein_radius"], params["arc_snr"]))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if figure1 is not None:
            _save_figure(plot_mock(figure1), self.figures / "figure1_mock.png")
        rows.sort()
        objects = Table(rows=rows, names=("id", "ra", "dec", "z", "m500", "n_members"))
        names = ("id", "ra", "dec", "grade", "einstein_radius", "arc_snr")
        t = (
            Table(rows=sorted(truth), names=names)
            if truth
            else Table(names=names, dtype=[str, float, float, str, float, float])
        )
        _write_ecsv(t, self.survey_dir / "truth.ecsv")
        _write_ecsv(objects, self.survey_dir / "objects.ecsv")
        return {"n_survey": len(objects), "n_lenses": len(t), "n_training_fields": n_train}

    def _real_survey(self) -> dict:
        from astropy.table import Table

        from clusterlens.survey import read_table
        from clusterlens.survey.catalogs import find_column
        from clusterlens.survey.crossmatch import crossmatch

        c = self.config
        cat = read_table(c.catalog)
        known = read_table(c.known)
        cols = {k: find_column(cat, None, k, "--catalog") for k in ("id", "ra", "dec")}
        objects = Table(
            {
                "id": [str(v) for v in cat[cols["id"]]],
                "ra": np.asarray(cat[cols["ra"]], float),
                "dec": np.asarray(cat[cols["dec"]], float),
            }
        )
        for name in ("z", "m500"):
            if name in cat.colnames:
                objects[name] = np.asarray(cat[name], float)
        kra = find_column(known, None, "ra", "--known")
        kdec = find_column(known, None, "dec", "--known")
        match = crossmatch(objects, known, radius=5.0, known_columns=(kra, kdec))
        grades = (
            [str(g) if str(g) in "ABC" and str(g) else "B" for g in match.matched["known_grade"]]
            if "known_grade" in match.matched.colnames
            else ["B"] * len(match.matched)
        )
        truth = Table(
            {
                "id": [str(v) for v in match.matched["id"]],
                "ra": np.asarray(match.matched["ra"], float),
                "dec": np.asarray(match.matched["dec"], float),
                "grade": grades,
            }
        )
        self.survey_dir.mkdir(parents=True, exist_ok=True)
        _write_ecsv(truth, self.survey_dir / "truth.ecsv")
        _write_ecsv(objects, self.survey_dir / "objects.ecsv")
        return {
            "n_survey": len(objects),
            "n_lenses": len(truth),
            "n_training_fields": c.n_train_fields,
        }

    def step_training_set(self) -> dict:
        from clusterlens.mock import plot_parameter_distributions, simulate_dataset

        c = self.config
        sky = FieldPoolSky(self.mock_config, c.seed, range(c.n_train_fields))
        ds = simulate_dataset(
            self.out / "training_set",
            c.n_train_images,
            self.mock_config,
            seed=c.seed,
            sky=sky,
            workers=c.workers,
            progress=c.progress,
        )
        fig = plot_parameter_distributions(ds.params)
        _save_figure(fig, self.figures / "figure2_parameters.png")
        if not (self.figures / "figure1_mock.png").is_file():  # a real survey: no injections
            self._figure1_from(sky)
        return {"n_images": len(ds), "n_lenses": int((ds.labels == 1).sum())}

    def _figure1_from(self, sky) -> None:
        from clusterlens.mock import LensRejected, MockLensSimulator, plot_mock

        sim = MockLensSimulator(self.mock_config)
        rng = np.random.default_rng([self.config.seed, 13])
        for _ in range(self.mock_config.selection.max_cluster_draws):
            try:
                result = sim.simulate(sky.draw(rng, "lens"), rng)
            except LensRejected:
                continue
            _save_figure(plot_mock(result), self.figures / "figure1_mock.png")
            return

    def step_train(self) -> dict:
        project = self.project()
        try:
            model = self.trainer(project).train([], [], None)
        finally:
            project.close()
        run = Path(model).parent
        shutil.copyfile(run / "training.png", self.figures / ".figure4.tmp.png")
        os.replace(self.figures / ".figure4.tmp.png", self.figures / "figure4_training.png")
        history = json.loads((run / "metrics.json").read_text())
        history = history.get("history", history) if isinstance(history, dict) else history
        best = max(history, key=lambda h: h["val_auc"])
        return {"model": model, "best_val_auc": best["val_auc"], "best_epoch": best["epoch"]}

    def step_score(self) -> dict:
        from clusterlens.metrics import average_precision, plot_roc_pr, roc_auc

        model = self.done("train")["model"]
        project = self.project()
        try:
            pool = project.ids("pool")
            scores = self.scorer(project).score(model, pool)
        finally:
            project.close()
        lens = set(str(i) for i in self.truth()["id"])
        labels = np.array([1 if i in lens else 0 for i in pool])
        info = {"n_scored": len(pool)}
        if 0 < labels.sum() < labels.size:
            k = self.k(len(pool))
            thr = float(np.sort(scores)[::-1][min(k, scores.size) - 1])
            fig = plot_roc_pr(labels, scores, thresholds=[thr])
            fig.suptitle(f"The survey scored by the first network (top {k} marked)", y=1.02)
            _save_figure(fig, self.figures / "figure5_roc_pr.png")
            from clusterlens import metrics

            purity, completeness = metrics.purity_completeness(
                labels, scores, metrics.PAPER_THRESHOLD
            )
            info.update(
                auc=roc_auc(labels, scores),
                average_precision=average_precision(labels, scores),
                tpr0=metrics.tpr0(labels, scores),
                tpr10=metrics.tpr10(labels, scores),
                purity=float(purity),
                completeness=float(completeness),
                threshold=metrics.PAPER_THRESHOLD,
            )
        return info

    def step_search(self) -> dict:
        from clusterlens.loop import SimulatedGrader, TopK

        c = self.config
        truth = {str(r["id"]): str(r["grade"]) for r in self.truth()}
        project = self.project()
        try:
            survey_ids = [str(i) for i in self.objects()["id"]]
            test = (survey_ids, [1 if i in truth else 0 for i in survey_ids])
            trainer, scorer = self.trainer(project), self.scorer(project)
            graders = [
                SimulatedGrader(name, truth, error_rate=c.grader_error, seed=[c.seed, j])
                for j, name in enumerate(_GRADERS)
            ]
            while len(project.table()) < c.iterations:
                it = project.open_iteration()
                if it is None:
                    n_done = len(project.table())
                    self.progress.say(f"  iteration {n_done + 1}/{c.iterations}: train and score")
                    top = TopK(self.k(len(survey_ids)))
                    it = project.iterate(trainer, scorer, top, test_set=test)
                for g in graders:
                    g.grade(project, it)
                row = project.apply(add_negatives=True)
                self.progress.say(
                    f"  iteration {row['iteration']}: {row['new']} new lenses, "
                    f"{row['cumulative']} in all"
                )
            fig = project.plot_progress(test_label="whole survey")
            _save_figure(fig, self.figures / "figure6_progress.png")
            table = project.table()
            _write_ecsv(table, self.out / "table2.ecsv")
        finally:
            project.close()
        return {"iterations": len(table), "found": int(table["cumulative"][-1])}

    def step_grade(self) -> dict:
        from clusterlens.survey.rgb import gallery

        project = self.project()
        try:
            path = self.out / "candidates.fits"
            catalog = project.export_catalog(path, overwrite=True)
            scores = {}
            for it in project.iterations():
                scores.update(project.scores(it["number"]))
        finally:
            project.close()
        source = self.source()
        objects = {str(r["id"]): r for r in self.objects()}
        if len(catalog):
            order = np.argsort(-np.asarray(catalog["SCORE"], float))[:12]
            ids = [str(catalog["CLUSTER_ID"][j]) for j in order]
        else:  # nothing confirmed: show the best-scored objects instead
            ids = sorted(scores, key=scores.get, reverse=True)[:12]
        if ids:
            images = [
                source.get(float(objects[i]["ra"]), float(objects[i]["dec"]), 223, cluster_id=i)[0]
                for i in ids
            ]
            grade_of = {
                str(catalog["CLUSTER_ID"][j]): str(catalog["GRADE"][j]) for j in range(len(catalog))
            }
            grades = [grade_of.get(i, "") for i in ids]
            gallery(
                images,
                ids,
                grades,
                ncols=6,
                panel_size=2.0,
                path=self.figures / "figure7_gallery.png",
            )
        counts = (
            {g: int(np.sum(np.asarray(catalog["GRADE"]) == g)) for g in "ABC"}
            if len(catalog)
            else {}
        )
        return {"n_candidates": len(catalog), "grades": counts, "catalog": str(path)}

    def step_crossmatch(self) -> dict:
        from astropy.table import Table

        from clusterlens.survey.crossmatch import crossmatch

        cands = Table.read(self.out / "candidates.fits")
        truth = self.truth()
        result = crossmatch(cands, truth, radius=2.0, candidate_columns=("RA_BCG", "DEC_BCG"))
        for name in ("matched", "new", "missed"):
            _write_ecsv(getattr(result, name), self.out / f"crossmatch_{name}.ecsv")
        missed_by_grade = (
            {g: int(np.sum(np.asarray(result.missed["grade"]) == g)) for g in "ABC"}
            if len(result.missed)
            else {}
        )
        found_by_grade = (
            {g: int(np.sum(np.asarray(result.matched["known_grade"]) == g)) for g in "ABC"}
            if len(result.matched)
            else {}
        )
        return {
            "summary": result.summary(),
            "matched": len(result.matched),
            "new": len(result.new),
            "missed": len(result.missed),
            "truth": len(truth),
            "found_by_grade": found_by_grade,
            "missed_by_grade": missed_by_grade,
        }

    def step_report(self) -> dict:
        from astropy.table import Table

        info = {name: self.done(name) for name, _ in STEPS if name != "report"}
        table = Table.read(self.out / "table2.ecsv")
        page = _report_html(self.config, info, table, self.figures, self.seconds_all())
        tmp = self.out / ".report.html.tmp"
        tmp.write_text(page)
        os.replace(tmp, self.out / "report.html")
        return {"report": str(self.out / "report.html")}

    def seconds_all(self) -> dict:
        out = {}
        for name, _ in STEPS:
            d = self.done(name)
            if d is not None and "seconds" in d:
                out[name] = d["seconds"]
        out.update(self.seconds)
        return out


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from clusterlens._progress import progress

    return progress(total=total, desc=desc, unit="field", leave=False)


def _write_ecsv(table, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.ecsv")
    table.write(tmp, format="ascii.ecsv", overwrite=True)
    os.replace(tmp, path)


def run_demo(
    out,
    config: DemoConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo into the folder ``out`` (resuming a demo already there).

    Parameters
    ----------
    out : str or Path
        Output folder: ``report.html``, ``figures/*.png``, ``survey/`` (cutouts, objects,
        truth), ``training_set/``, ``search.sqlite`` and its work folder, ``table2.ecsv``,
        ``candidates.fits``, ``crossmatch_*.ecsv``, ``steps/`` (what is done).
    config : DemoConfig, optional
        Default: ``DemoConfig()`` (300 fields, about 9 minutes on two cores).
    log : callable, optional
        Receives the progress lines (default: printed to stderr when ``config.progress``).

    Returns
    -------
    DemoResult

    Raises
    ------
    ClusterlensError
        ``out`` holds another demo (other options) or unrelated files.
    """
    config = DemoConfig() if config is None else config
    if not isinstance(config, DemoConfig):
        raise ParameterError(
            f"The 'config' parameter of run_demo must be a DemoConfig. Got {type(config).__name__}."
        )
    out = Path(out)
    progress = _Progress(config.progress or log is not None)
    if log is not None:
        progress.say = lambda text: log(f"[{progress.elapsed()}] {text}")  # type: ignore[method-assign]
    demo = _Demo(out, config, progress)
    demo.prepare()
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        for k, (name, what) in enumerate(STEPS, start=1):
            if name != "report" and demo.done(name) is not None:
                progress.say(f"step {k}/{len(STEPS)} {name}: done before, skipped")
                continue
            progress.say(f"step {k}/{len(STEPS)} {name}: {what}")
            t0 = time.perf_counter()
            info = getattr(demo, "step_" + name.replace("-", "_"))()
            info["seconds"] = round(time.perf_counter() - t0, 1)
            demo.mark(name, info)
    finally:
        torch.set_num_threads(threads)
    from astropy.table import Table

    summary = {name: demo.done(name) for name, _ in STEPS}
    progress.say(f"done: {out / 'report.html'}")
    return DemoResult(
        out=out,
        report=out / "report.html",
        table=Table.read(out / "table2.ecsv"),
        summary=summary,
        seconds=demo.seconds_all(),
    )


# --------------------------------------------------------------------------- the report

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:1.2em 0}
.card{background:#f4f6fa;border-radius:10px;padding:12px 18px;min-width:140px}
.card b{display:block;font-size:1.8em;color:#1f4e8c}
figure{margin:1.5em 0} figure img{max-width:100%;border:1px solid #ddd;border-radius:6px}
figcaption{color:#555;font-size:.92em;margin-top:.3em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:4px 9px;text-align:right} th{background:#eef2f8}
.steps td:first-child,.steps th{text-align:left}
"""


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return "&ndash;" if not math.isfinite(v) else f"{v:.3g}"
    return html.escape(str(v))


def _figure(figures: Path, name: str, caption: str) -> str:
    if not (figures / name).is_file():
        return f"<p><em>{html.escape(caption)}: not made in this run.</em></p>"
    return (
        f'<figure><img src="figures/{name}" alt="{html.escape(caption)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _generalisation_html(config: DemoConfig, train: dict, score: dict) -> str:
    """The first network on the mocks it was validated on and on the survey, side by side."""
    if "auc" not in score:
        return "<p><em>Generalisation: the survey has one class only; not measured.</em></p>"
    thr = score.get("threshold", float("nan"))
    rows = [
        ("validation mocks (training fields)", train["best_val_auc"], None, None, None, None),
        (
            "the survey (other fields)",
            score["auc"],
            score.get("tpr0"),
            score.get("tpr10"),
            score.get("purity"),
            score.get("completeness"),
        ),
    ]
    body = "".join(
        "<tr>" + "".join(f"<td>{'-' if v is None else _fmt(v)}</td>" for v in r) + "</tr>"
        for r in rows
    )
    where = (
        "real cutouts"
        if config.real
        else f"synthetic fields {config.n_train_fields} onwards (the network was trained on "
        f"mocks injected into fields 0-{config.n_train_fields - 1})"
    )
    return f"""<h3>Generalisation</h3>
<p>The network is judged on the survey, which it never saw: {html.escape(where)}. What
differs is the clusters, their members, confusers and observing conditions of the fields, not
the simulator that made the survey's lenses; <code>benchmarks/bench_generalisation.py</code>
measures skies made by another simulator. TPR0 and TPR10: completeness at zero and at fewer
than ten false positives; purity and completeness at the paper's threshold {thr:g}.</p>
<table><tr><th>set</th><th>AUC</th><th>TPR0</th><th>TPR10</th><th>purity</th>
<th>completeness</th></tr>{body}</table>"""


def _report_html(config: DemoConfig, info: dict, table, figures: Path, seconds: dict) -> str:
    survey, tset, train = info["survey"], info["training-set"], info["train"]
    score, grade, cm = info["score"], info["grade"], info["crossmatch"]
    sky = "real cutouts and catalog" if config.real else "the built-in synthetic sky"
    cards = [
        (survey["n_survey"], "survey fields searched"),
        (survey["n_lenses"], "lenses in the truth"),
        (tset["n_images"], "training images"),
        (f"{train['best_val_auc']:.3f}", "best validation AUC"),
        (f"{score.get('auc', float('nan')):.3f}", "survey AUC (1st network)"),
        (grade["n_candidates"], "graded candidates"),
        (f"{cm['matched']}/{cm['truth']}", "true lenses recovered"),
        (cm["new"], "false candidates"),
    ]
    cards_html = "".join(
        f'<div class="card"><b>{_fmt(v)}</b>{html.escape(t)}</div>' for v, t in cards
    )
    cols = table.colnames
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{_fmt(r[c] if not hasattr(r[c], 'item') else r[c].item())}</td>" for c in cols
        )
        + "</tr>"
        for r in table
    )
    step_rows = "".join(
        f"<tr><td>{k}. {html.escape(name)}</td><td>{html.escape(what)}</td>"
        f"<td>{seconds.get(name, 0):.0f} s</td></tr>"
        for k, (name, what) in enumerate(STEPS, start=1)
    )
    grades = grade.get("grades", {})
    found = cm.get("found_by_grade", {})
    missed = cm.get("missed_by_grade", {})
    grade_line = ", ".join(f"{g}: {grades.get(g, 0)}" for g in "ABC")
    recovery = ", ".join(
        f"grade {g}: {found.get(g, 0)} of {found.get(g, 0) + missed.get(g, 0)}" for g in "ABC"
    )
    small_run = ""
    if not config.real and (config.epochs < 5 or config.n_train_images < 500):
        # the quick demo checks that every step runs; its network has not seen enough to learn
        n_images, epochs = config.n_train_images, config.epochs
        small_run = (
            f'<p class="sub"><b>A small run</b> ({n_images} training images, {epochs} epochs): '
            "every step ran, but the network has had too little training to tell lenses apart, "
            "so its scores are close to chance. Run <code>clusterlens demo</code> without "
            "<code>--quick</code> for the real thing (about nine minutes on two CPU cores).</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>clusterlens demo report</title>
<style>{_CSS}</style></head><body>
<h1>clusterlens demo</h1>
<p class="sub">The method of Zhang et al. end to end on {sky}: {survey["n_survey"]} survey
fields, a narrow ResNet-18 (channels {list(config.widths)}) trained for {config.epochs} epochs,
{config.iterations} search iterations with {len(_GRADERS)} simulated graders
({100 * config.grader_error:.0f}% error rate).</p>
{small_run}
<div class="cards">{cards_html}</div>

<h2>1. The mocks</h2>
{
        _figure(
            figures,
            "figure1_mock.png",
            "Figure 1: one injected lens: the cluster field, the arc with the "
            "critical curves (red) and caustics (green), and the final image.",
        )
    }
{
        _figure(
            figures,
            "figure2_parameters.png",
            f"Figure 2: the parameters of the {tset['n_lenses']} mock lenses of the training set.",
        )
    }

<h2>2. Training</h2>
{
        _figure(
            figures,
            "figure4_training.png",
            "Figure 4: loss, validation AUC and its change per epoch "
            f"(best epoch {train['best_epoch']}, dashed).",
        )
    }

<h2>3. Scoring the survey</h2>
{
        _figure(
            figures,
            "figure5_roc_pr.png",
            "Figure 5: ROC and precision-recall curves of the first "
            "network's scores on the survey against the truth; the marker is the top-k threshold.",
        )
    }

{_generalisation_html(config, train, score)}

<h2>4. The search (Table 2)</h2>
<table><tr>{head}</tr>{body}</table>
<p>Purity and completeness are measured on the whole survey against the truth, at each
iteration's selection threshold.</p>
{
        _figure(
            figures,
            "figure6_progress.png",
            "Figure 6: cumulative candidates by grade, purity and completeness per iteration.",
        )
    }

<h2>5. Candidates</h2>
<p>{grade["n_candidates"]} candidates graded ({grade_line}); cross-match with the truth:
{html.escape(cm["summary"])}. Recovered by true grade: {recovery}.</p>
{
        _figure(
            figures,
            "figure7_gallery.png",
            "Figure 7: the top candidates by score, with their aggregated grade.",
        )
    }

<h2>Steps</h2>
<table class="steps"><tr><th>step</th><th>what</th><th>time</th></tr>{step_rows}</table>
<p class="sub">Files: <code>candidates.fits</code> (the graded catalog),
<code>table2.ecsv</code>, <code>crossmatch_*.ecsv</code>, <code>search.sqlite</code>
(open it with <code>clusterlens inspect</code> or <code>clusterlens loop status</code>).</p>
</body></html>
"""
