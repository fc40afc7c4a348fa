"""Scoring: sorted and complete tables, the checkpoint's transform, Dask workers, resuming
after a kill exactly once, bf16 agreement, and clear errors."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.table import Table

from clusterlens.cli import main
from clusterlens.datasets import LensDataset, write_toy_dataset
from clusterlens.errors import ParameterError
from clusterlens.nets import AsinhStretch, CheckpointError, get_network, save_checkpoint
from clusterlens.nets.scoring import Scorer, ScoringConfig, ScoringError
from clusterlens.survey.cutouts import CutoutSource, FitsDirectoryCutouts, write_cutout_fits

torch.set_num_threads(1)  # see test_training.py: 2-thread teams stall on the shared machine
ROOT = Path(__file__).resolve().parent.parent
TINY = {"widths": [8, 16, 32, 64]}
SIZE = 32


def _checkpoint(path, *, seed=0, transform=None, crop=SIZE):
    torch.manual_seed(seed)
    model = get_network("resnet18", **TINY)
    with torch.no_grad():  # non-trivial batch-norm statistics, so scores spread out
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(
        path, model, transform=transform or AsinhStretch(), config={"crop": crop}
    )


def _image(cluster_id, size):
    rng = np.random.default_rng(int(cluster_id))
    image = rng.normal(size=(3, size, size)) * np.array([0.006, 0.011, 0.025])[:, None, None]
    image[:, size // 2 - 2 : size // 2 + 2, size // 2 - 2 : size // 2 + 2] += rng.uniform(0, 2)
    return image.astype(np.float32)


class SyntheticSource(CutoutSource):
    """Deterministic images by cluster id; counts its calls; optional NaN or wrong size."""

    def __init__(self, *, nan_ids=(), wrong_size_ids=(), missing_ids=()):
        self.calls = 0
        self.nan_ids, self.wrong_size_ids = set(nan_ids), set(wrong_size_ids)
        self.missing_ids = set(missing_ids)

    def get(self, ra, dec, size, bands="grz", *, cluster_id=None):
        from astropy.io import fits

        from clusterlens.survey.cutouts import CutoutError

        self.calls += 1
        if cluster_id in self.missing_ids:
            raise CutoutError(f"no cutout for {cluster_id}")
        image = _image(cluster_id, size + 2 if cluster_id in self.wrong_size_ids else size)
        if cluster_id in self.nan_ids:
            image[1, 3, 4] = np.nan
        return image, fits.Header()


def _catalog(n):
    return Table({"id": np.arange(100, 100 + n), "ra": np.linspace(10, 11, n), "dec": np.zeros(n)})


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("model") / "best.pt")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("ds") / "ds", 22, size=40, arc_snr=8.0)


def _scorer(path, **kw):
    return Scorer(path, **{"batch_size": 4, "chunk_size": 5, "progress": False, **kw})


def test_dataset_table_sorted_complete_and_equal_to_direct_prediction(
    model_path, dataset, tmp_path
):
    scorer = _scorer(model_path)
    out = tmp_path / "scores.parquet"
    table = scorer.score(dataset, out=out)
    assert table.colnames == ["id", "ra", "dec", "score", "logit"]
    assert sorted(table["id"]) == list(range(22))
    assert np.all(np.diff(table["score"]) <= 0) and np.all(np.diff(table["logit"]) <= 0)
    assert np.ptp(table["score"]) > 1e-3
    direct = scorer.predict(np.stack([dataset.crop(k, SIZE) for k in range(22)]))
    np.testing.assert_allclose(table["score"], direct[np.asarray(table["id"])], rtol=1e-5)
    np.testing.assert_allclose(table["score"], 1 / (1 + np.exp(-table["logit"])), rtol=1e-12)
    import pyarrow.parquet as pq

    back = pq.read_table(out)
    assert back.column_names == table.colnames
    np.testing.assert_array_equal(back.column("id").to_numpy(), table["id"])
    assert not out.with_name(out.name + ".parts").exists()
    # the same scoring run again (e.g. after a kill that landed after its last write): its
    # complete result, not an error
    again = scorer.score(dataset, out=out)
    np.testing.assert_array_equal(again["id"], table["id"])
    np.testing.assert_allclose(again["score"], table["score"])
    with pytest.raises(ScoringError, match="exists"):  # another scoring onto that table
        scorer.score(dataset.subset(dataset.indices[:5]), out=out)


def test_checkpoint_transform_is_used(dataset, tmp_path):
    images = np.stack([dataset.crop(k, SIZE) for k in range(6)])
    for divisor in (1.0, 7.0):
        transform = AsinhStretch(divisor=divisor)
        path = _checkpoint(tmp_path / f"m{divisor}.pt", transform=transform)
        scores = _scorer(path).predict(images)
        model = get_network("resnet18", **TINY)
        model.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
        with torch.no_grad():
            expected = torch.softmax(model.eval()(transform(torch.from_numpy(images))), 1)[:, 1]
        np.testing.assert_allclose(scores, expected.numpy(), rtol=1e-4, atol=1e-6)
        table = _scorer(path).score(dataset)
        np.testing.assert_allclose(
            np.sort(table["score"][np.isin(table["id"], range(6))]), np.sort(scores), rtol=1e-5
        )


def test_fits_cutouts_from_the_command_line(model_path, tmp_path, capsys):
    from astropy.io import fits

    catalog = _catalog(7)
    folder = tmp_path / "cutouts"
    for row in catalog:
        header = fits.Header({"CRVAL1": row["ra"], "CRVAL2": row["dec"], "BANDS": "grz"})
        write_cutout_fits(folder / f"{row['id']}.fits", _image(row["id"], 40), header)
    catalog.write(tmp_path / "catalog.ecsv")
    out = tmp_path / "scores.csv"
    argv = ["score", "--model", str(model_path), "--cutouts", str(folder)]
    argv += ["--catalog", str(tmp_path / "catalog.ecsv"), "--out", str(out), "--quiet"]
    assert main([*argv, "--batch-size", "3", "--chunk-size", "4", "--threads", "1"]) == 0
    assert '"n_objects": 7' in capsys.readouterr().out
    table = Table.read(out, format="ascii.csv")
    assert sorted(table["id"]) == list(catalog["id"])
    # The files are 40 pixels, cut to the network's 32 about their centre.
    images = np.stack([_image(i, 40)[:, 4:36, 4:36] for i in catalog["id"]])
    direct = dict(zip(catalog["id"], _scorer(model_path).predict(images), strict=True))
    np.testing.assert_allclose(table["score"], [direct[i] for i in table["id"]], rtol=1e-5)
    # --symmetries reaches the scorer
    out4 = tmp_path / "scores4.csv"
    argv4 = [*argv[:-3], "--out", str(out4), "--quiet", "--symmetries", "4", "--threads", "1"]
    assert main(argv4) == 0
    capsys.readouterr()
    table4 = Table.read(out4, format="ascii.csv")
    four = dict(zip(catalog["id"], _scorer(model_path, symmetries=4).predict(images), strict=True))
    np.testing.assert_allclose(table4["score"], [four[i] for i in table4["id"]], rtol=1e-5)
    assert main(["score", "--model", str(tmp_path / "nope.pt"), *argv[3:]]) == 2
    assert "No checkpoint" in capsys.readouterr().err


def test_one_and_two_dask_workers_give_the_same_table(model_path):
    catalog = _catalog(18)
    one = _scorer(model_path, threads=1).score(SyntheticSource(), catalog, workers=1)
    two = _scorer(model_path, threads=1).score(SyntheticSource(), catalog, workers=2)
    np.testing.assert_array_equal(one["id"], two["id"])
    np.testing.assert_allclose(one["logit"], two["logit"], rtol=1e-6, atol=1e-7)
    assert sorted(one["id"]) == list(catalog["id"])


_KILLED_RUN = """
import sys, time
import numpy as np, torch
from astropy.io import fits
from astropy.table import Table
sys.path.insert(0, {tests!r})
from test_scoring import SyntheticSource, _catalog
from clusterlens.nets.scoring import Scorer

class Slow(SyntheticSource):
    def get(self, *args, **kwargs):
        time.sleep(0.05)
        return super().get(*args, **kwargs)

if __name__ == "__main__":
    torch.set_num_threads(1)
    Scorer({model!r}, batch_size=2, chunk_size=4, progress=False, threads=1).score(
        Slow(), _catalog(40), out={out!r})
"""


def test_killed_run_resumes_exactly_once(model_path, tmp_path):
    out = tmp_path / "scores.parquet"
    parts = tmp_path / "scores.parquet.parts"
    script = tmp_path / "run.py"
    script.write_text(
        _KILLED_RUN.format(tests=str(ROOT / "tests"), model=str(model_path), out=str(out))
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(list(parts.glob("part-*.parquet"))) < 3:
            assert proc.poll() is None, "the scoring run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted(parts.glob("part-*.parquet"))
    assert 3 <= len(done) < 10 and not out.exists()
    source = SyntheticSource()
    table = _scorer(model_path, batch_size=2, chunk_size=4).score(source, _catalog(40), out=out)
    assert source.calls == 40 - 4 * len(done)  # finished chunks are not scored again
    assert len(table) == 40 and len(set(table["id"])) == 40
    assert sorted(table["id"]) == list(_catalog(40)["id"])
    fresh = _scorer(model_path, chunk_size=7).score(SyntheticSource(), _catalog(40))
    np.testing.assert_array_equal(table["id"], fresh["id"])
    np.testing.assert_allclose(table["logit"], fresh["logit"], rtol=1e-5, atol=1e-6)


def test_parts_of_another_run_are_refused(model_path, tmp_path):
    out = tmp_path / "s.parquet"
    scorer = _scorer(model_path)
    scorer.score(SyntheticSource(), _catalog(6), out=out, keep_parts=True)
    out.unlink()
    with pytest.raises(ScoringError, match="another scoring run"):
        scorer.score(SyntheticSource(), _catalog(7), out=out)
    table = scorer.score(SyntheticSource(), _catalog(7), out=out, overwrite=True)
    assert len(table) == 7


def test_bf16_on_cpu_agrees_with_fp32(model_path, dataset):
    images = np.stack([dataset.crop(k, SIZE) for k in range(12)])
    fp32 = _scorer(model_path, precision="fp32").predict(images)
    bf16 = _scorer(model_path, precision="bf16").predict(images)
    assert not np.array_equal(fp32, bf16)  # bf16 really ran
    np.testing.assert_allclose(bf16, fp32, atol=0.02)


def test_bad_pixels_and_sizes_are_clear_errors(model_path, dataset, tmp_path):
    scorer = _scorer(model_path)
    with pytest.raises(ScoringError, match=r"object 103 .*1 NaN/inf pixel.*plane 1"):
        scorer.score(SyntheticSource(nan_ids={103}), _catalog(6))
    with pytest.raises(ScoringError, match=r"object 101 .*shape \(3, 34, 34\).*\(3, 32, 32\)"):
        scorer.score(SyntheticSource(wrong_size_ids={101}), _catalog(6))
    with pytest.raises(ScoringError, match="object 102.*no cutout"):
        scorer.score(SyntheticSource(missing_ids={102}), _catalog(6))
    with pytest.raises(ScoringError, match="NaN/inf"):
        scorer.predict(np.full((1, 3, SIZE, SIZE), np.nan, dtype=np.float32))
    small = write_toy_dataset(tmp_path / "small", 4, size=24)
    with pytest.raises(ScoringError, match="smaller than the 32 x 32"):
        scorer.score(small)
    with pytest.raises(ParameterError, match="trained on 32 x 32"):
        Scorer(model_path, size=40)
    with pytest.raises(ParameterError, match="catalog"):
        scorer.score(SyntheticSource())
    with pytest.raises(ParameterError, match="'out' parameter"):
        scorer.score(dataset, out=tmp_path / "scores.txt")


def test_skipped_errors_are_reported_last(model_path):
    source = SyntheticSource(nan_ids={101}, missing_ids={104})
    table = _scorer(model_path, on_error="skip").score(source, _catalog(7))
    assert len(table) == 7 and list(table["id"][-2:]) == [101, 104]
    assert np.isnan(table["score"][-2:]).all() and np.isfinite(table["score"][:-2]).all()
    assert "NaN/inf" in table["error"][-2] and "no cutout" in table["error"][-1]
    assert table.meta["n_failed"] == 2


def test_corrupt_and_foreign_checkpoints(model_path, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(model_path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt"):
        Scorer(broken)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a clusterlens checkpoint"):
        Scorer(other)
    uncropped = _checkpoint(tmp_path / "nocrop.pt", crop=None)
    with pytest.raises(ParameterError, match="without a crop"):
        Scorer(uncropped)
    assert Scorer(uncropped, size=SIZE).config.size == SIZE


def test_fits_directory_nan_policy_raise_names_the_file(model_path, tmp_path):
    from astropy.io import fits

    image = _image(100, SIZE)
    image[0, 1, 1] = np.nan
    fits.PrimaryHDU(image).writeto(tmp_path / "100.fits")
    source = FitsDirectoryCutouts(tmp_path, nan_policy="raise")
    with pytest.raises(ScoringError, match=r"100\.fits.*NaN"):
        _scorer(model_path).score(source, _catalog(1))


# -- the search loop with the real network ----------------------------------------------------


def _survey_folder(folder, catalog, size=40):
    from astropy.io import fits

    for row in catalog:
        header = fits.Header({"CRVAL1": row["ra"], "CRVAL2": row["dec"], "BANDS": "grz"})
        write_cutout_fits(folder / f"{row['id']}.fits", _image(row["id"], size), header)


def test_loop_iterate_trains_scores_and_resumes(tmp_path, capsys):
    from clusterlens.loop import SearchProject
    from clusterlens.loop.networks import NetworkScorer, project_positions

    write_toy_dataset(tmp_path / "mocks", 16, size=40, arc_snr=8.0)
    catalog = _catalog(8)
    _survey_folder(tmp_path / "cutouts", catalog)
    catalog.write(tmp_path / "objects.ecsv")
    project = tmp_path / "search.sqlite"
    assert main(["loop", "create", str(project), "--objects", str(tmp_path / "objects.ecsv")]) == 0
    argv = ["loop", "iterate", str(project), "--cutouts", str(tmp_path / "cutouts")]
    argv += ["--train-data", str(tmp_path / "mocks"), "--epochs", "1", "--crop", "32"]
    argv += ["--network-options", '{"widths": [8, 16, 32, 64]}', "--k", "3", "--quiet"]
    assert main(argv) == 0
    assert "iteration 1: 3 objects open" in capsys.readouterr().out
    p = SearchProject(project)
    scores = p.scores(1)
    assert sorted(scores) == sorted(str(i) for i in catalog["id"])
    top = sorted(scores, key=scores.get, reverse=True)[:3]
    assert sorted(p.selected(1)) == sorted(top)
    # Confirm one lens: the next iteration trains on the mocks plus that object's cutout.
    p.record_decision(top[0], 1, "ann", is_lens=True, grade="A")
    p.record_decision(top[1], 1, "ann", is_lens=False)
    p.record_decision(top[2], 1, "ann", is_lens=False)
    p.apply()
    assert main(argv) == 0
    work = tmp_path / "search.sqlite.work"
    runs = sorted(work.glob("train-*"))
    assert len(runs) == 2
    additions = LensDataset(next(r for r in runs if (r / "additions").exists()) / "additions")
    assert len(additions) == 1 and additions.labels[0] == 1
    assert additions.params["object_id"][0] == top[0]
    assert sorted(p.scores(2)) == sorted(str(i) for i in catalog["id"] if str(i) != top[0])
    # A finished scoring is read back, not redone.
    model = next(work.glob("train-*/run/best.pt"))
    scorer = NetworkScorer(
        None, project_positions(p), work, config=ScoringConfig(batch_size=4, progress=False)
    )
    ids = [str(i) for i in catalog["id"]]
    first = NetworkScorer(
        FitsDirectoryCutouts(tmp_path / "cutouts"),
        project_positions(p),
        work,
        config=ScoringConfig(batch_size=4, progress=False),
    ).score(str(model), ids)
    np.testing.assert_array_equal(scorer.score(str(model), ids), first)  # source None: read back
    # A pretrained model instead of training.
    assert (
        main(
            [
                "loop",
                "iterate",
                str(project),
                "--cutouts",
                str(tmp_path / "cutouts"),
                "--model",
                str(model),
                "--quiet",
                "--k",
                "2",
            ]
        )
        == 0
    )  # iteration 2 is open and undecided: an earlier run's finished result, reported as such
    assert "made by an earlier run" in capsys.readouterr().out
    p.record_decision(p.selected(2)[0], 2, "ann", is_lens=False)
    assert main(argv) == 2  # with decisions in it, it must be applied first
    assert "still open" in capsys.readouterr().err


# -- diagnostics (Figure 3) -----------------------------------------------------------------


def test_embeddings_are_the_features_before_the_head(model_path, dataset):
    from clusterlens.nets import load_checkpoint
    from clusterlens.nets.diagnostics import embed

    features = embed(model_path, dataset, batch_size=5)
    assert features.shape == (22, 64) and features.dtype == np.float32
    loaded = load_checkpoint(model_path)
    x = torch.from_numpy(np.stack([dataset.crop(k, SIZE) for k in range(22)]))
    with torch.no_grad():
        expected = loaded.model.features(loaded.transform(x)).numpy()
        logits = loaded.model.head(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    scores = _scorer(model_path).predict(x.numpy())
    np.testing.assert_allclose(scores, torch.softmax(torch.from_numpy(logits), 1)[:, 1], rtol=1e-5)
    with pytest.raises(ParameterError, match="NaN"):
        embed(loaded, np.full((2, 3, SIZE, SIZE), np.nan))


def test_projections_separate_clusters_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    from clusterlens.nets.diagnostics import plot_embedding, project_2d

    rng = np.random.default_rng(1)
    features = np.concatenate([rng.normal(0, 1, (30, 16)), rng.normal(6, 1, (30, 16))])
    groups = ["mock lens"] * 30 + ["known lens"] * 30
    for method in ("pca", "tsne"):
        coords = project_2d(features, method=method, seed=0)
        assert coords.shape == (60, 2)
        a, b = coords[:30].mean(0), coords[30:].mean(0)
        spread = max(coords[:30].std(0).max(), coords[30:].std(0).max())
        assert np.linalg.norm(a - b) > 3 * spread
    np.testing.assert_allclose(
        project_2d(features, method="pca"), coords_pca := project_2d(features, method="pca")
    )
    assert np.all(np.isfinite(coords_pca))
    fig = plot_embedding(coords, groups)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "mock lens",
        "known lens",
    ]
    with pytest.raises(ParameterError, match="method"):
        project_2d(features, method="isomap")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ParameterError, match="umap-learn"):
            project_2d(features, method="umap")


def test_a_kill_between_the_table_and_the_cleanup_resumes_as_done(model_path, tmp_path):
    out = tmp_path / "s.parquet"
    scorer = _scorer(model_path)
    first = scorer.score(SyntheticSource(), _catalog(6), out=out, keep_parts=True)
    out.with_name(f".{out.name}.done.json").unlink()  # killed before the marker
    again = scorer.score(SyntheticSource(), _catalog(6), out=out)
    np.testing.assert_allclose(again["score"], first["score"])
    assert not out.with_name(out.name + ".parts").exists()


# -- the runtime: precisions, int8, layout ----------------------------------------------------


def test_int8_agrees_with_fp32_within_its_stated_tolerance(model_path, dataset, tmp_path):
    # Calibrated on other images than those scored, as a survey would be.
    calibration = write_toy_dataset(tmp_path / "calib", 24, size=40, arc_snr=8.0, seed=5).path
    images = np.stack([dataset.crop(k, SIZE) for k in range(len(dataset))])
    fp32 = _scorer(model_path).predict(images)
    scorer = _scorer(model_path, precision="int8", calibration=calibration, calibration_images=16)
    int8 = scorer.predict(images)
    assert not np.array_equal(fp32, int8)  # int8 really ran
    # the tolerance docs/scoring.md states for int8 (measured worst case here: see there)
    np.testing.assert_allclose(int8, fp32, atol=0.03)
    body = scorer._engine().model.features
    assert any("quantized" in type(m).__module__ for m in body.modules())
    # the checkpoint's own model is left in float32, unfused
    assert all(p.dtype == torch.float32 for p in scorer.checkpoint.model.parameters())
    # the score path gives the same int8 scores (one calibration, however chunks are spread)
    table = scorer.score(dataset)
    np.testing.assert_allclose(table["score"], int8[np.asarray(table["id"])], rtol=1e-6)


def test_int8_needs_a_calibration_dataset(model_path, tmp_path):
    with pytest.raises(ParameterError, match="calibration"):
        ScoringConfig(precision="int8")
    with pytest.raises(ParameterError, match="calibration"):
        ScoringConfig(precision="int8", calibration=3)
    missing = tmp_path / "nothing"
    scorer = _scorer(model_path, precision="int8", calibration=missing)
    with pytest.raises(ParameterError, match="calibration"):
        scorer.predict(np.zeros((1, 3, SIZE, SIZE), np.float32))


def test_int8_parts_are_not_mixed_with_fp32_parts(model_path, dataset, tmp_path):
    out = tmp_path / "scores.parquet"
    _scorer(model_path).score(dataset, out=out, keep_parts=True)
    calibration = str(dataset.path)
    int8 = _scorer(model_path, precision="int8", calibration=calibration)
    with pytest.raises(ScoringError, match="exists"):
        int8.score(dataset, out=out)
    out.unlink()
    with pytest.raises(ScoringError, match="another scoring run"):
        int8.score(dataset, out=out)


def test_bf16_body_weights_are_cast_once_and_the_checkpoint_is_untouched(model_path):
    scorer = _scorer(model_path, precision="bf16")
    engine = scorer._engine()
    assert {p.dtype for p in engine.model.features.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in engine.model.head.parameters()} == {torch.float32}
    assert {p.dtype for p in scorer.checkpoint.model.parameters()} == {torch.float32}
    x = torch.zeros(2, 3, SIZE, SIZE)
    prepared = engine.network.prepare_input(x)
    assert prepared.dtype == torch.bfloat16
    assert prepared.is_contiguous(memory_format=torch.channels_last)


def test_uncertainty_does_not_import_the_scorer():
    # the import circle scoring <-> uncertainty is gone (it was a function-level import, so
    # read every import statement of the module, not only sys.modules after importing it)
    import ast

    import clusterlens.nets.uncertainty as uncertainty

    tree = ast.parse(Path(uncertainty.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "clusterlens.nets._runtime" in imported
    assert not any(name.startswith("clusterlens.nets.scoring") for name in imported)


def test_fast_asinh_equals_torch_asinh():
    from clusterlens.nets.transforms import _asinh

    x = torch.cat([torch.logspace(-30, 30, 601), -torch.logspace(-30, 30, 601), torch.zeros(1)])
    for dtype in (torch.float32, torch.float64):
        torch.testing.assert_close(_asinh(x.to(dtype)), torch.asinh(x.to(dtype)))
    grad = x[:5].clone().requires_grad_()
    _asinh(grad).sum().backward()  # tensors with gradients keep torch's differentiable asinh
    assert grad.grad is not None


def test_runtime_device_and_precision_rules():
    from clusterlens.nets._runtime import resolve_device, scoring_dtype, training_dtype

    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    with pytest.raises(ParameterError, match="Unknown device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            resolve_device("cuda:1")
    assert scoring_dtype("auto", cpu) is None and scoring_dtype("int8", cpu) is None
    assert scoring_dtype("bf16", cpu) == torch.bfloat16
    assert scoring_dtype("fp16", cpu) == torch.float16
    assert training_dtype(None, cpu) is None and training_dtype(True, cpu) == torch.bfloat16


# -- test-time views (ScoringConfig.symmetries) ----------------------------------------------


def test_dihedral_views_are_the_eight_distinct_symmetries():
    from clusterlens.nets._scoring_run import dihedral_views

    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    for n in (1, 2, 4, 8):
        views = dihedral_views(x, n)
        assert len(views) == n and torch.equal(views[0], x)
        assert len({tuple(v.flatten().tolist()) for v in views}) == n  # all different
    # every view is a symmetry of the square: a pixel permutation, same values per plane
    for v in dihedral_views(x, 8):
        assert torch.equal(v.flatten(2).sort(-1).values, x.flatten(2).sort(-1).values)


@pytest.mark.parametrize("transform", ["asinh", "robust"])
def test_symmetries_score_the_mean_probability_of_the_rotated_images(dataset, tmp_path, transform):
    """Scoring with n views equals scoring the n rotated/mirrored images one by one and
    averaging their probabilities (the transforms commute with the square's symmetries)."""
    from clusterlens.nets import RobustAsinhStretch

    tr = AsinhStretch() if transform == "asinh" else RobustAsinhStretch()
    path = _checkpoint(tmp_path / "m.pt", seed=3, transform=tr)
    images = np.stack([dataset.crop(k, SIZE) for k in range(10)])
    plain = _scorer(path)
    for n, turned in (
        (2, [images, np.rot90(images, 2, axes=(-2, -1))]),
        (
            8,
            [
                np.flip(np.rot90(images, k, axes=(-2, -1)), axis=-1)
                if m
                else np.rot90(images, k, axes=(-2, -1))
                for m in (0, 1)
                for k in range(4)
            ],
        ),
    ):
        expected = np.mean([plain.predict(np.ascontiguousarray(t)) for t in turned], axis=0)
        got = _scorer(path, symmetries=n).predict(images)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
        assert not np.allclose(got, plain.predict(images), atol=1e-6)  # the views mattered
    # the dataset path (transform in the reader threads) gives the same as predict
    table = _scorer(path, symmetries=4).score(dataset.subset(dataset.indices[:10]))
    order = np.argsort(np.asarray(table["id"]))
    np.testing.assert_allclose(
        np.asarray(table["score"])[order], _scorer(path, symmetries=4).predict(images), rtol=1e-5
    )


def test_symmetries_are_checked_and_never_mix_parts(model_path, dataset, tmp_path):
    for bad in (3, 0, 16, 2.0, "8"):
        with pytest.raises(ParameterError, match="'symmetries'"):
            ScoringConfig(symmetries=bad)
    with pytest.raises(ParameterError, match="symmetries=1"):
        _scorer(model_path, symmetries=4).predict_samples(
            np.stack([dataset.crop(k, SIZE) for k in range(2)]), 3
        )
    out = tmp_path / "s.parquet"
    _scorer(model_path).score(SyntheticSource(), _catalog(6), out=out, keep_parts=True)
    out.unlink()  # parts of a one-view run are left; a four-view run must not take them
    with pytest.raises(ScoringError, match="another scoring run"):
        _scorer(model_path, symmetries=4).score(SyntheticSource(), _catalog(6), out=out)
