"""Running the demo: :func:`run_demo` runs the steps of :data:`~clusterlens.demo.STEPS` in
order into one folder, each one skipped when a marker in ``OUT/steps/`` says it is done.

Every output is written atomically (:mod:`clusterlens._io`) and a step's marker only after all
of its outputs, so a killed demo resumes at the step it was in. The HTML page is built by
:mod:`clusterlens.demo.report`.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clusterlens._io import atomic_path, atomic_write_text
from clusterlens.demo.config import GRADERS, STEPS, DemoConfig, DemoResult
from clusterlens.demo.report import report_html
from clusterlens.demo.sky import FieldPoolSky, field_rng, field_scene, truth_grade
from clusterlens.errors import ClusterlensError, ParameterError

__all__ = ["run_demo"]


# --------------------------------------------------------------------------- utilities


def _write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str))


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _write_ecsv(table, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)


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
        _write_json(self.steps / f"{name}.json", info)

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
            _write_json(state, wanted)

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
            scene = field_scene(sky, c.seed, int(index))
            oid = f"C{int(index):05d}"
            ra = 150.0 + 0.05 * (int(index) % 40)
            dec = 2.0 + 0.05 * (int(index) // 40)
            image, params = sim.crop_cutout(scene.image), None
            if n_lens < target:
                try:
                    result = sim.simulate(scene, field_rng(c.seed + 1, int(index)))
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
                grade = truth_grade(scene.n_members, params["arc_snr"])
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
        with atomic_path(self.figures / "figure4_training.png") as tmp:
            shutil.copyfile(run / "training.png", tmp)
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
                for j, name in enumerate(GRADERS)
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
        page = report_html(self.config, info, table, self.figures, self.seconds_all())
        atomic_write_text(self.out / "report.html", page)
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
