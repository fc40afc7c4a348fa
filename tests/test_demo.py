"""The quick demo end to end: report, figures, Table 2, resuming and refusing."""

from __future__ import annotations

import re

import pytest
from astropy.table import Table

pytest.importorskip("torch")

from clusterlens.cli import main  # noqa: E402
from clusterlens.demo import STEPS, DemoConfig, run_demo  # noqa: E402
from clusterlens.errors import ParameterError  # noqa: E402

FIGURES = (
    "figure1_mock.png",
    "figure2_parameters.png",
    "figure4_training.png",
    "figure5_roc_pr.png",
    "figure6_progress.png",
    "figure7_gallery.png",
)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--out", str(out), "--quick", "--quiet"]) == 0
    return out


def test_quick_demo_writes_the_report(quick_demo):
    page = (quick_demo / "report.html").read_text()
    for name in FIGURES:
        path = quick_demo / "figures" / name
        assert path.is_file() and path.stat().st_size > 5000, name
        assert f'src="figures/{name}"' in page
    assert page.count("<tr>") >= 3 + len(STEPS)  # Table 2 header + 2 rows, the steps
    assert "A small run" in page  # the quick demo says its network cannot have learnt
    assert not list(quick_demo.rglob("*.part"))  # every atomic write finished its rename
    table = Table.read(quick_demo / "table2.ecsv")
    assert list(table["iteration"]) == [1, 2]
    assert (table["n_selected"] >= 5).all()
    assert table["cumulative"][-1] >= table["cumulative"][0]
    truth = Table.read(quick_demo / "survey" / "truth.ecsv")
    objects = Table.read(quick_demo / "survey" / "objects.ecsv")
    assert 0 < len(truth) < len(objects) == 40  # 60 fields, a third for training
    assert set(truth["id"]) <= set(objects["id"])
    assert set(truth["grade"]) <= {"A", "B", "C"}
    # the candidates the search confirmed are cross-matched against the truth
    cands = Table.read(quick_demo / "candidates.fits")
    matched = Table.read(quick_demo / "crossmatch_matched.ecsv")
    new = Table.read(quick_demo / "crossmatch_new.ecsv")
    assert len(matched) + len(new) == len(cands) == table["cumulative"][-1]


def test_rerun_skips_finished_steps(quick_demo, capsys):
    before = (quick_demo / "steps" / "train.json").stat().st_mtime_ns
    assert main(["demo", "--out", str(quick_demo), "--quick"]) == 0
    err = capsys.readouterr().err
    assert len(re.findall(r"done before, skipped", err)) == len(STEPS) - 1
    assert (quick_demo / "steps" / "train.json").stat().st_mtime_ns == before


def test_rerun_with_other_options_is_refused(quick_demo, capsys):
    assert main(["demo", "--out", str(quick_demo), "--quick", "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "other options (epochs)" in err and "Traceback" not in err


def test_non_demo_folder_is_refused(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("precious")
    assert main(["demo", "--out", str(tmp_path), "--quick", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_killed_step_resumes(tmp_path):
    """A step whose marker was never written (a kill) is run again; the others are not."""
    config = DemoConfig.quick(n_clusters=12, n_train_images=16, epochs=1, k=3, progress=False)
    run_demo(tmp_path, config)
    (tmp_path / "steps" / "crossmatch.json").unlink()
    (tmp_path / "report.html").unlink()
    lines = []
    run_demo(tmp_path, config, log=lines.append)
    assert any("crossmatch: compare" in line for line in lines)
    assert sum("skipped" in line for line in lines) == len(STEPS) - 2
    assert (tmp_path / "report.html").is_file()


@pytest.mark.parametrize(
    "bad",
    [{"n_clusters": 3}, {"lens_fraction": 1.5}, {"k": 0}, {"cutouts": "x"}, {"threads": 0}],
)
def test_bad_options(bad):
    with pytest.raises(ParameterError):
        DemoConfig(**bad)


def test_real_cutouts_and_catalog(quick_demo, tmp_path):
    """--cutouts/--catalog/--known: the quick demo's survey files stand in for real data."""
    survey = quick_demo / "survey"
    out = tmp_path / "real"
    argv = ["demo", "--out", str(out), "--quick", "--quiet", "--clusters", "12"]
    argv += ["--train-images", "16", "--epochs", "1", "--iterations", "1", "--k", "4"]
    argv += ["--cutouts", str(survey / "cutouts"), "--catalog", str(survey / "objects.ecsv")]
    argv += ["--known", str(survey / "truth.ecsv")]
    assert main(argv) == 0
    objects = Table.read(out / "survey" / "objects.ecsv")
    truth = Table.read(out / "survey" / "truth.ecsv")
    assert len(objects) == 40  # every catalog object is searched
    assert sorted(truth["id"]) == sorted(Table.read(survey / "truth.ecsv")["id"])
    assert (out / "figures" / "figure1_mock.png").is_file()  # a mock on a training field
    assert len(Table.read(out / "table2.ecsv")) == 1
