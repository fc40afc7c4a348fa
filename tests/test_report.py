"""The realism report of a mock dataset (clusterlens.mock.report) and its CLI hook."""

import json
import math

import numpy as np
import pytest

from clusterlens.datasets import LensDataset
from clusterlens.errors import ParameterError
from clusterlens.mock import ImageConfig, MockConfig, simulate_dataset
from clusterlens.mock import report as rep
from tests._data import ZHANG_CATALOG, needs_zhang

SMALL = MockConfig(image=ImageConfig(cutout_size=131, crop_size=101))
FILES = {
    "distributions.png",
    "gallery_positives.png",
    "gallery_negatives.png",
    "summary.json",
    "summary.md",
    "complete.json",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "ds"
    return simulate_dataset(path, 6, SMALL, seed=5, workers=0, progress=False)


@pytest.fixture(scope="module")
def report(dataset):
    return rep.realism_report(dataset, dataset.path / "report", n_gallery=3)


def _ring(radius, n=201, scale=0.262, width=0.4):
    y, x = (np.mgrid[:n, :n] - (n - 1) / 2) * scale
    ring = np.exp(-0.5 * ((np.hypot(x, y) - radius) / width) ** 2)
    return np.stack([0.01 * ring, 0.02 * ring, 0.03 * ring])


@pytest.mark.parametrize("radius", [5.0, 9.0, 20.0])
def test_arc_radius_of_a_ring(radius):
    m = rep.measure_arc(_ring(radius), [1e-3, 2e-3, 3e-3], 0.262)
    # flux-weighted mean radius of a thin Gaussian ring: R + w^2 / R
    assert m["arc_radius"] == pytest.approx(radius + 0.4**2 / radius, rel=0.01)
    # the pixels above 2e-3 in r: |r - R| < w sqrt(2 ln 10); their mean surface brightness
    half = 0.4 * math.sqrt(2 * math.log(10))
    assert m["arc_area"] == pytest.approx(2 * math.pi * radius * 2 * half, rel=0.06)
    t = np.linspace(-half, half, 2001)
    mean = 0.02 * np.exp(-0.5 * (t / 0.4) ** 2).mean()
    assert m["arc_surface_brightness"] == pytest.approx(
        22.5 - 2.5 * np.log10(mean / 0.262**2), abs=0.03
    )


def test_arc_measures_of_an_invisible_arc():
    faint = _ring(6.0) * 1e-3
    m = rep.measure_arc(faint, 1.0, 0.262)
    assert math.isnan(m["arc_surface_brightness"]) and m["arc_area"] == 0.0
    assert m["arc_radius"] == pytest.approx(6.0, rel=0.02)  # all positive pixels instead
    with pytest.raises(ParameterError, match="arc"):
        rep.measure_arc(np.zeros((5, 5)), 1.0, 0.262)


def test_simulator_stores_arc_measures(dataset):
    p = dataset.params
    lens = np.asarray(p["label"]) == 1
    r = np.asarray(p["arc_radius"], float)[lens]
    sb = np.asarray(p["arc_surface_brightness"], float)[lens]
    theta = np.asarray(p["einstein_radius"], float)[lens]
    assert np.all(r > 0.3 * theta) and np.all(r < 3 * theta)  # arcs lie near theta_E
    seen = np.isfinite(sb)  # NaN: no r pixel above the noise (the arc is seen in g or z)
    assert seen.any() and np.all((sb[seen] > 18) & (sb[seen] < 30))


def test_report_files_complete(report, dataset):
    assert {p.name for p in report.path.iterdir()} == FILES
    assert rep.report_is_complete(report.path, dataset=dataset.path)
    for name in ("distributions.png", "gallery_positives.png", "gallery_negatives.png"):
        assert (report.path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = rep.load_report(report.path)
    assert loaded.summary == json.loads(json.dumps(report.summary))
    md = (report.path / "summary.md").read_text()
    for q in rep.QUANTITIES:
        assert f"| {q.name} |" in md
    assert "n/a" in md  # bcg_r_e: not in these parameters
    # no confuser record in these negatives: random ones, and the caption says so
    neg = report.galleries["negatives"]
    if neg["confuser_column"] is None:
        assert not neg["hard"] and "no record of confusers" in neg["caption"]
    else:  # a sky that records its confusers
        assert neg["hard"] == (neg["n_hard"] > 0)
        assert neg["hard"] or "random negatives" in neg["caption"]


def test_summary_matches_direct_computation(report, dataset):
    p = dataset.params
    lens = np.asarray(p["label"]) == 1
    for name in ("einstein_radius", "arc_radius", "arc_snr", "source_redshift", "arc_mag_r"):
        v = np.asarray(p[name], float)[lens]
        row = report.summary[name]["mocks"]
        assert row["n"] == lens.sum()
        assert row["median"] == pytest.approx(np.median(v))
        assert row["p16"] == pytest.approx(np.percentile(v, 16))
        assert row["p84"] == pytest.approx(np.percentile(v, 84))
    assert report.summary["bcg_r_e"]["mocks"] is None
    assert report.summary["source_redshift"]["paper"]["high"] == 1.495
    # without the catalog: the built-in summary of the candidates
    assert report.summary["einstein_radius"]["candidates"]["median"] == 6.5


@needs_zhang
def test_candidate_summary_matches_the_catalog():
    from clusterlens.survey.catalogs import read_zhang2026_candidates

    table = read_zhang2026_candidates(ZHANG_CATALOG)
    for column, ref in rep.CANDIDATE_SUMMARY.items():
        v = np.asarray(table[column], float)
        v = np.log10(v) if column == "m500" else v
        assert ref["n"] == v.size
        for key, value in (
            ("median", np.median(v)),
            ("p16", np.percentile(v, 16)),
            ("p84", np.percentile(v, 84)),
            ("min", v.min()),
            ("max", v.max()),
        ):
            assert ref[key] == pytest.approx(value, abs=1e-3), (column, key)


def test_hard_negatives_from_a_confuser_column():
    from astropy.table import Table

    t = Table(
        {
            "index": [0, 1, 2, 3, 4],
            "label": [1, 0, 0, 0, 0],
            "confusers": ["", "spiral", "none", "star,ring", ""],
        }
    )
    rows, texts, column = rep.hard_negatives(t)
    assert column == "confusers" and rows.tolist() == [1, 3]
    assert texts == ["spiral", "star,ring"]
    t2 = Table({"index": [0, 1, 2], "label": [0, 0, 0], "n_confusers": [0, 2, 1]})
    t2.rename_column("n_confusers", "confuser_count")
    assert rep.hard_negatives(t2)[0].tolist() == [1, 2]
    assert rep.hard_negatives(Table({"index": [0], "label": [0]}))[2] is None
    # the synthetic sky's record: a flag decides, the kinds label the panel
    t3 = Table(
        {
            "index": [0, 1, 2, 3],
            "label": [0, 0, 0, 0],
            "sky_hard_negative": [False, True, False, True],
            "sky_confusers": ["spiral", "edge_on,star", "", ""],
        }
    )
    rows, texts, column = rep.hard_negatives(t3)
    assert column == "sky_hard_negative" and rows.tolist() == [1, 3]
    assert texts == ["edge_on,star", "hard negative"]
    assert rep._short_kinds("merger,merger,edge_on") == "2 merger, edge_on"
    assert len(rep._short_kinds("merger,edge_on,arclet,spiral,star,ring")) == 26


def test_killed_report_is_not_complete(report, dataset, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "rep"
    shutil.copytree(report.path, out)
    assert rep.report_is_complete(out)

    def killed(*a, **k):
        raise KeyboardInterrupt  # killed while drawing the galleries

    monkeypatch.setattr(rep, "_gallery", killed)
    # a hard kill leaves its temporary folder: never taken for the report, removed next time
    (tmp_path / ".rep.0123.tmp").mkdir()
    (tmp_path / ".rep.0123.tmp" / "summary.md").write_text("half")
    assert not rep.report_is_complete(tmp_path / ".rep.0123.tmp")
    with pytest.raises(KeyboardInterrupt):
        rep.realism_report(dataset, out, n_gallery=2)
    # the old report is untouched and no half-written folder is left
    assert rep.report_is_complete(out) and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    assert rep.load_report(out).files.keys() == report.files.keys()
    monkeypatch.setattr(rep, "plot_realism", killed)  # killed earlier this time
    with pytest.raises(KeyboardInterrupt):
        rep.realism_report(dataset, tmp_path / "new", n_gallery=2)
    assert not (tmp_path / "new").exists() and not rep.report_is_complete(tmp_path / "new")
    # files without the manifest, or a damaged file: not complete
    (out / "gallery_positives.png").write_bytes(b"\x89PNG truncated")
    assert not rep.report_is_complete(out)
    with pytest.raises(rep.ReportError, match="damaged"):
        rep.load_report(out)
    (out / "complete.json").unlink()
    assert not rep.report_is_complete(out)
    with pytest.raises(rep.ReportError, match="incomplete"):
        rep.load_report(out)


def test_report_of_another_dataset_state_is_stale(report, dataset, tmp_path):
    other = simulate_dataset(tmp_path / "o", 2, SMALL, seed=6, workers=0, progress=False)
    assert rep.report_is_complete(report.path)
    assert not rep.report_is_complete(report.path, dataset=other.path)


def test_report_rejects_bad_input(dataset, tmp_path):
    with pytest.raises(ParameterError, match="n_gallery"):
        rep.realism_report(dataset, tmp_path / "r", n_gallery=0)
    with pytest.raises(ParameterError, match="candidates"):
        rep.realism_report(dataset, tmp_path / "r", candidates=tmp_path / "missing.csv")
    # a folder that is not a report (here: the dataset itself) is never replaced
    with pytest.raises(ParameterError, match="not a realism report"):
        rep.realism_report(dataset, dataset.path)
    assert len(LensDataset(dataset.path)) == 6


@needs_zhang
def test_report_with_the_candidate_catalog(dataset, tmp_path):
    r = rep.realism_report(dataset, tmp_path / "r", candidates=ZHANG_CATALOG, n_gallery=2)
    c = r.summary["arc_radius"]["candidates"]
    assert c["n"] == 485 and c["median"] == pytest.approx(6.5)
    assert r.summary["log_m500"]["candidates"]["median"] == pytest.approx(14.389, abs=1e-3)


@pytest.mark.slow
def test_cli_writes_the_report_and_no_report_skips_it(tmp_path, capsys):
    from clusterlens.cli import main

    cfg = tmp_path / "small.toml"
    cfg.write_text("[image]\ncutout_size = 131\ncrop_size = 101\n")
    out = tmp_path / "ds"
    argv = ["simulate", "--config", str(cfg), "--n", "2", "--workers", "0", "--no-progress"]
    argv += ["--out", str(out)]
    assert main([*argv, "--no-report"]) == 0
    assert "realism report" not in capsys.readouterr().out
    assert not (out / "report").exists()
    # the same command without --no-report: the dataset is complete, only the report is made
    assert main(argv) == 0
    assert "realism report:" in capsys.readouterr().out
    assert rep.report_is_complete(out / "report", dataset=out)
    assert len(LensDataset(out)) == 2  # the report does not disturb the dataset
    assert main(argv) == 0
    assert "report up to date" in capsys.readouterr().out
    # a damaged report is rewritten by the same command
    (out / "report" / "summary.md").write_text("half")
    assert main(argv) == 0
    assert "realism report:" in capsys.readouterr().out
    assert rep.report_is_complete(out / "report", dataset=out)
    assert main([*argv, "--candidates", str(tmp_path / "no.csv")]) == 2


def test_report_of_any_parameter_table_with_hard_negatives(tmp_path):
    """A dataset with few parameters and a record of confusers: n/a rows, hard negatives."""
    from clusterlens.datasets import DatasetWriter

    rng = np.random.default_rng(0)
    w = DatasetWriter(tmp_path / "toy", 6, (3, 24, 24))
    confusers = ["", "", "", "spiral", "", "star,ring"]
    for i in range(6):
        params = {"einstein_radius": 5.0 + i} if i < 3 else {"confusers": confusers[i]}
        w.write(i, rng.normal(0, 0.01, (3, 24, 24)).astype(np.float32), int(i < 3), params)
    ds = w.finalize()
    r = rep.realism_report(ds, tmp_path / "r", n_gallery=4)
    assert rep.report_is_complete(r.path, dataset=ds.path)
    assert r.summary["einstein_radius"]["mocks"]["median"] == pytest.approx(6.0)
    assert r.summary["arc_radius"]["mocks"] is None and r.summary["arc_snr"]["column"] is None
    neg = r.galleries["negatives"]
    assert neg["hard"] and neg["n_hard"] == 2 and neg["n_shown"] == 2
    assert "hard by 'confusers'" in neg["caption"]
