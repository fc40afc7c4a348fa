"""The demo's HTML report (clusterlens.demo.report and its Jinja2 template), without a run:
every value is HTML-escaped exactly once, the page's sections and figures are there."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.table import Table

from clusterlens.demo import STEPS, DemoConfig
from clusterlens.demo.report import report_html

# the figures a run makes but the gallery (Figure 7), which the page then names as not made
MADE = "figure1_mock figure2_parameters figure4_training figure5_roc_pr figure6_progress".split()
HOSTILE = "<script>alert('x')</script> & \"quoted\""


def _info(summary="3 matched, 1 new, 3 missed (radius 2 arcsec)", auc=0.75):
    score = {"n_scored": 40}
    if auc is not None:
        score.update(auc=auc, tpr0=0.1, tpr10=0.5, purity=0.6, completeness=0.5, threshold=0.9)
    return {
        "survey": {"n_survey": 40, "n_lenses": 6, "n_training_fields": 20},
        "training-set": {"n_images": 96, "n_lenses": 48},
        "train": {"model": "m.pt", "best_val_auc": 0.8125, "best_epoch": 2},
        "score": score,
        "search": {"iterations": 2, "found": 4},
        "grade": {"n_candidates": 4, "grades": {"A": 2, "B": 1, "C": 1}},
        "crossmatch": {
            "summary": summary,
            "matched": 3,
            "new": 1,
            "missed": 3,
            "truth": 6,
            "found_by_grade": {"A": 2, "B": 1},
            "missed_by_grade": {"C": 3},
        },
    }


def _table(**extra):
    t = Table({"iteration": [1, 2], "purity": [0.6, math.nan], "cumulative": [3, 4]})
    for name, values in extra.items():
        t[name] = values
    return t


@pytest.fixture
def figures(tmp_path):
    for name in MADE:
        (tmp_path / f"{name}.png").write_bytes(b"png")
    return tmp_path


def test_the_page_shows_the_runs_numbers_figures_and_steps(figures):
    page = report_html(DemoConfig.quick(), _info(), _table(), figures, {"train": 8.4})
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</body></html>\n")
    for name in MADE:
        assert f'<img src="figures/{name}.png"' in page
    assert "Figure 7: the top candidates by score, with their aggregated grade.: not made" in page
    assert '<div class="card"><b>3/6</b>true lenses recovered</div>' in page
    assert "channels [8, 16, 32, 64]" in page and "(5% error rate)" in page
    assert "(A: 2, B: 1, C: 1)" in page
    assert "grade A: 2 of 2, grade B: 1 of 1, grade C: 0 of 3." in page
    assert "<td>0.812</td>" in page  # the best validation AUC to 3 digits
    assert "<td>3. train</td><td>train the lens finder (section 2.3, Figure 4)</td><td>8 s" in page
    # header and rows of Table 2 (2 iterations), of the generalisation table and of the steps
    assert page.count("<tr>") == (1 + 2) + (1 + 2) + (1 + len(STEPS))
    assert "A small run" in page  # 96 images, 2 epochs
    assert "A small run" not in report_html(DemoConfig(), _info(), _table(), figures, {})


def test_a_missing_number_is_an_en_dash_not_escaped_text(figures):
    page = report_html(DemoConfig.quick(), _info(), _table(), figures, {})
    assert "<td>&ndash;</td>" in page and "&amp;ndash;" not in page


def test_every_interpolated_value_is_escaped_exactly_once(figures):
    table = _table(note=np.array([HOSTILE, "a<b"]))
    page = report_html(DemoConfig.quick(), _info(summary=HOSTILE), table, figures, {})
    assert "<script>" not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;quoted&#34;"
    assert page.count(escaped) == 2  # the cross-match summary and the Table 2 cell
    assert "<td>a&lt;b</td>" in page
    assert "&amp;lt;" not in page and "&amp;amp;" not in page and "&amp;#" not in page
    # the apostrophe of a caption, in the alt attribute and in the caption, once each
    assert page.count("first network&#39;s scores") == 2


def test_a_survey_of_one_class_and_real_data(figures):
    config = DemoConfig(cutouts="c", catalog="o.fits", known="k.fits")
    page = report_html(config, _info(auc=None), _table(), figures, {})
    assert "Generalisation: the survey has one class only; not measured." in page
    assert "real cutouts and catalog" in page
    assert '<div class="card"><b>nan</b>survey AUC (1st network)</div>' in page
    page = report_html(DemoConfig(), _info(), _table(), figures, {})
    assert "synthetic fields 100 onwards" in page and "fields 0-99)" in page
    assert "the paper&#39;s threshold 0.9.</p>" not in page  # template text is not escaped
    assert "the paper's threshold 0.9.</p>" in page
