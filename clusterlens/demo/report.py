"""The demo's HTML report: one page with the paper's figures, Table 2 and the run's numbers.

The page's layout is the Jinja2 template ``templates/report.html.j2``; this module gathers
what it shows from the steps' records. The template is rendered with autoescape on, so every
value shown (a catalog's object ids, a cross-match summary, a real survey's file names) is
HTML-escaped once; the only markup that comes from Python is the en dash of a missing number.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from clusterlens.demo.config import GRADERS, STEPS, DemoConfig

__all__ = ["report_html"]


def _cell(value):
    """A number or text as shown in the report: floats to 3 significant digits, an en dash
    for NaN or infinity; everything else as text (escaped by the template)."""
    from markupsafe import Markup

    if isinstance(value, float | np.floating):
        return Markup("&ndash;") if not math.isfinite(value) else f"{value:.3g}"
    return str(value)


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("clusterlens.demo", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails instead of showing nothing
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    return env


def _plain(value):
    """A table cell as a Python scalar (numpy scalars have ``.item()``)."""
    return value.item() if hasattr(value, "item") else value


def report_html(config: DemoConfig, info: dict, table, figures: Path, seconds: dict) -> str:
    """The report page of a finished demo.

    Parameters
    ----------
    config : DemoConfig
        The demo's options.
    info : dict
        Each step's record (``OUT/steps/<name>.json``) by step name, the report's excepted.
    table : astropy Table
        Table 2 (``SearchProject.table()``).
    figures : Path
        The folder of the figures; a figure that is not there is named as not made.
    seconds : dict
        Seconds each step took, by step name.

    Returns
    -------
    str
        The HTML page.
    """
    survey, tset, train = info["survey"], info["training-set"], info["train"]
    score, grade, cm = info["score"], info["grade"], info["crossmatch"]
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
    generalisation = [
        ("validation mocks (training fields)", train["best_val_auc"], None, None, None, None),
        (
            "the survey (other fields)",
            score.get("auc"),
            score.get("tpr0"),
            score.get("tpr10"),
            score.get("purity"),
            score.get("completeness"),
        ),
    ]
    found = cm.get("found_by_grade", {})
    missed = cm.get("missed_by_grade", {})
    # the quick demo checks that every step runs; its network has not seen enough to learn
    small_run = not config.real and (config.epochs < 5 or config.n_train_images < 500)
    context = {
        "config": config,
        "sky": "real cutouts and catalog" if config.real else "the built-in synthetic sky",
        "widths": list(config.widths),
        "n_graders": len(GRADERS),
        "small_run": small_run,
        "cards": cards,
        "figures_made": {path.name for path in Path(figures).glob("*.png")},
        "survey": survey,
        "tset": tset,
        "train": train,
        "score": score,
        "threshold": score.get("threshold", float("nan")),
        "generalisation": generalisation,
        "columns": list(table.colnames),
        "rows": [[_plain(row[c]) for c in table.colnames] for row in table],
        "grade": grade,
        "grades": grade.get("grades", {}),
        "cm": cm,
        "recovery": [(g, found.get(g, 0), found.get(g, 0) + missed.get(g, 0)) for g in "ABC"],
        "steps": STEPS,
        "seconds": seconds,
    }
    return _environment().get_template("report.html.j2").render(context)
