"""The on-disk dataset: writing from several processes, resuming, reading, validation."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from clusterlens.datasets import (
    Augmentation,
    DatasetError,
    DatasetWriter,
    LensDataset,
    center_crop,
    write_toy_dataset,
)
from clusterlens.errors import ParameterError

SHAPE = (3, 12, 10)


def _image(i):
    return np.random.default_rng(i).normal(size=SHAPE).astype(np.float32)


def _assert_stored(ds, i, got):
    """``got`` is image ``i`` as a quantised dataset stores it: within half a step (and
    float32's rounding of the value)."""
    half_step = 0.5 * ds.images.step[i][:, None, None]
    assert np.all(np.abs(got - _image(i)) <= half_step * (1 + 1e-9) + 2.0**-24 * np.abs(got))


def _write(writer, indices):
    for i in indices:
        writer.write(i, _image(i), i % 2, {"theta_e": 0.1 * i, "cluster": f"c{i}"})


def test_write_finalize_read_roundtrip(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 7, SHAPE, creator="test", attrs={"depth": 23.4})
    _write(writer, range(7))
    ds = writer.finalize()
    assert len(ds) == 7 and ds.complete
    _assert_stored(ds, 3, ds.images[3])
    image, label = ds[4]
    _assert_stored(ds, 4, image)
    assert ds.images.encoding == "quantized" and ds.attrs["format_version"] == 2
    assert label == 0 and ds[5][1] == 1
    np.testing.assert_array_equal(ds.labels, np.arange(7) % 2)
    np.testing.assert_allclose(ds.params["theta_e"], 0.1 * np.arange(7))
    assert list(ds.params["cluster"]) == [f"c{i}" for i in range(7)]
    assert ds.bands == ("g", "r", "z") and ds.pixel_scale == 0.262
    assert ds.attrs["user"] == {"depth": 23.4} and ds.attrs["creator"] == "test"
    assert not (tmp_path / "ds" / "_records").exists()
    # finalize twice is harmless, reopening with the same shape is allowed
    assert len(writer.finalize()) == 7
    DatasetWriter(tmp_path / "ds", 7, SHAPE)


@pytest.mark.parametrize("options", [{"storage": "float32"}, {"compressed": False}])
def test_float32_images_read_back_the_same(tmp_path, options):
    writer = DatasetWriter(tmp_path / "raw", 2, SHAPE, **options)
    _write(writer, range(2))
    ds = writer.finalize()
    np.testing.assert_array_equal(ds[1][0], _image(1))
    np.testing.assert_array_equal(ds.images[0], _image(0))
    # readable by clusterlens versions that know only format version 1
    assert ds.attrs["format_version"] == 1 and ds.images.encoding == "float32"


def test_incomplete_dataset_is_refused_then_readable_on_request(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 5, SHAPE)
    _write(writer, [0, 2, 3])
    with pytest.raises(DatasetError, match="incomplete.*3 of 5"):
        LensDataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="2 of 5 images are not written"):
        writer.finalize()
    partial = LensDataset(tmp_path / "ds", allow_incomplete=True)
    assert partial.indices.tolist() == [0, 2, 3] and len(partial) == 3
    _assert_stored(partial, 2, partial[1][0])
    assert np.isnan(partial.images.step[1]).all()  # not written yet
    assert np.isnan(partial.images[1]).all()  # what LensDataset[k] refuses to hand out
    assert partial.labels.tolist() == [0, -1, 0, 1, -1]
    assert writer.missing().tolist() == [1, 4]


def test_two_processes_write_then_a_resumed_run_fills_the_gaps(tmp_path):
    path = tmp_path / "ds"
    code = textwrap.dedent(
        f"""
        import sys, numpy as np
        from clusterlens.datasets import DatasetWriter
        w = DatasetWriter({str(path)!r}, 40, {SHAPE})
        for i in range(int(sys.argv[1]), 40, 2):
            if i < 30:  # stop early: the run is "killed" before the end
                img = np.random.default_rng(i).normal(size={SHAPE}).astype(np.float32)
                w.write(i, img, i % 2, {{"theta_e": 0.1 * i}})
        """
    )
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(k)], cwd=root) for k in (0, 1)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    writer = DatasetWriter(path, 40, SHAPE)
    assert writer.missing().tolist() == list(range(30, 40))
    # A record whose image never made it (killed between the two writes) is not trusted:
    # the record is the last thing written, so there is no such state; a stray temporary
    # file is ignored as well.
    (path / "_records" / "00000" / ".000000031.json.x.tmp").write_text("{")
    before = (path / "images" / "c" / "0" / "0" / "0" / "0").stat().st_mtime_ns
    _write(writer, writer.missing())
    ds = writer.finalize()
    assert (path / "images" / "c" / "0" / "0" / "0" / "0").stat().st_mtime_ns == before
    assert len(ds) == 40
    for i in (0, 17, 29, 35):
        _assert_stored(ds, i, ds[i][0])
    np.testing.assert_allclose(ds.params["theta_e"], 0.1 * np.arange(40))


def test_bad_images_give_clear_errors(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 3, SHAPE)
    nan = _image(0)
    nan[1, 5, 7] = np.nan
    with pytest.raises(ParameterError, match=r"1 NaN/inf pixel.*band 'r' at \(y, x\) = \(5, 7\)"):
        writer.write(0, nan, 1)
    with pytest.raises(ParameterError, match=r"shape \(3, 12, 10\).*\(4, 12, 10\).*band count"):
        writer.write(0, np.zeros((4, 12, 10)), 1)
    with pytest.raises(ParameterError, match=r"Got \(3, 223, 223\) instead \(wrong shape\)"):
        writer.write(0, np.zeros((3, 223, 223)), 1)
    with pytest.raises(ParameterError, match="'label'.*0 \\(non-lens\\) or 1"):
        writer.write(0, _image(0), 2)
    with pytest.raises(ParameterError, match="'index'.*\\[0, 2\\]. Got 3"):
        writer.write(3, _image(0), 1)
    with pytest.raises(ParameterError, match="params.*scalars"):
        writer.write(0, _image(0), 1, {"psf": [1.0, 2.0]})
    with pytest.raises(ParameterError, match="'bands'"):
        DatasetWriter(tmp_path / "x", 3, SHAPE, bands=("g", "r"))
    with pytest.raises(DatasetError, match="image_shape"):
        DatasetWriter(tmp_path / "ds", 3, (3, 12, 12))
    assert writer.missing().tolist() == [0, 1, 2]
    with pytest.raises(DatasetError, match="No clusterlens dataset"):
        LensDataset(tmp_path / "nothing")


def test_center_crop_and_augmentation_keep_pixels():
    image = np.arange(3 * 371 * 371, dtype=np.float32).reshape(3, 371, 371)
    crop = center_crop(image, 223)
    assert crop.shape == (3, 223, 223)
    assert crop[0, 111, 111] == image[0, 185, 185]  # centre pixel stays at the centre
    with pytest.raises(ParameterError, match="'size'"):
        center_crop(image, 400)
    aug = Augmentation(max_shift=3, seed=1)
    a = aug.apply(image, 223, epoch=0, index=5)
    assert a.shape == (3, 223, 223)
    np.testing.assert_array_equal(a, aug.apply(image, 223, epoch=0, index=5))
    assert not np.array_equal(a, aug.apply(image, 223, epoch=1, index=5))
    # rotations/flips/shifts only move pixels: the values are a subset of the original's
    assert np.isin(a, image).all()
    small = np.random.default_rng(0).normal(size=(3, 16, 16)).astype(np.float32)
    b = Augmentation(max_shift=2).apply(small, None, 0, 0)
    assert b.shape == small.shape and np.isin(b, small).all()


def test_split_views_and_torch_dataset(tmp_path):
    ds = write_toy_dataset(tmp_path / "toy", 20, size=16, seed=3)
    assert json.loads((tmp_path / "toy" / "complete.json").read_text())["n_lenses"] == 10
    train, val = ds.split(0.2, seed=0)
    assert len(train) == 16 and len(val) == 4
    assert set(train.indices).isdisjoint(val.indices)
    assert (val.view_labels == 1).sum() == 2
    assert len(val.params) == 4 and list(val.params["index"]) == val.indices.tolist()
    view = train.torch(crop=12, augmentation=Augmentation(max_shift=1))
    image, label = view[0]
    assert image.shape == (3, 12, 12) and image.dtype == np.float32
    assert label == ds.labels[train.indices[0]]


def test_two_runs_with_other_settings_never_mix(tmp_path):
    """Two writers with other settings start on one new path at the same moment: exactly one
    owns it, the other is refused with a one-line error naming what differs."""
    import threading

    path = tmp_path / "ds"
    barrier = threading.Barrier(2)
    outcome = {}

    def start(seed):
        barrier.wait()
        try:
            outcome[seed] = DatasetWriter(path, 4, SHAPE, attrs={"seed": seed})
        except DatasetError as exc:
            outcome[seed] = exc

    threads = [threading.Thread(target=start, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [v for v in outcome.values() if isinstance(v, DatasetError)]
    owners = [v for v in outcome.values() if isinstance(v, DatasetWriter)]
    assert len(errors) == 1 and len(owners) == 1
    assert "seed" in str(errors[0]) and "\n" not in str(errors[0])
    _write(owners[0], range(4))
    assert owners[0].finalize().attrs["user"] == owners[0].attrs


def test_identical_runs_cooperate_and_leave_no_records(tmp_path):
    a = DatasetWriter(tmp_path / "ds", 4, SHAPE, attrs={"seed": 3})
    b = DatasetWriter(tmp_path / "ds", 4, SHAPE, attrs={"seed": 3})
    _write(a, range(4))
    a.finalize()
    _write(b, [1, 2])  # the slower run is still writing what it had started
    b.finalize()
    assert not (tmp_path / "ds" / "_records").exists()
    ds = LensDataset(tmp_path / "ds")
    _assert_stored(ds, 2, ds.images[2])


def test_a_lost_completion_marker_is_named_and_restored(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 5, SHAPE, attrs={"seed": 1})
    _write(writer, range(5))
    writer.finalize()
    (tmp_path / "ds" / "complete.json").unlink()
    with pytest.raises(DatasetError, match="all 5 images.*complete.json is missing"):
        LensDataset(tmp_path / "ds")
    ds = DatasetWriter(tmp_path / "ds", 5, SHAPE, attrs={"seed": 1}).finalize()
    assert ds.complete and list(ds.labels) == [0, 1, 0, 1, 0]
    _assert_stored(ds, 4, ds.images[4])


# -- issue 16: noise-aware quantised storage -------------------------------------------------

V1_DATASET = Path(__file__).resolve().parent / "data" / "dataset_v1"


@pytest.fixture(scope="module")
def mock_images():
    """Realistic mocks: 2 lenses and 2 untouched fields of the default simulator, 101^2."""
    from clusterlens.mock import ImageConfig, MockConfig
    from clusterlens.mock.dataset import make_image
    from clusterlens.mock.simulator import MockLensSimulator
    from clusterlens.mock.sky import SyntheticSky

    config = MockConfig(image=ImageConfig(cutout_size=131, crop_size=101))
    simulator, sky = MockLensSimulator(config), SyntheticSky(config)
    made = [make_image(i, seed=11, n_positive=2, simulator=simulator, sky=sky) for i in range(4)]
    return [(np.asarray(image, dtype=np.float32), label) for image, label, _ in made]


def test_quantised_error_is_small_against_the_noise_of_mock_images(tmp_path, mock_images):
    """The RMS error is step / sqrt(12) = 0.036 sigma at the default step of sigma / 8, never
    more than half a step, unbiased and uncorrelated with the signal; the measured noise is
    the sky noise; the chunk takes under 1 byte per pixel, over 4x less than float32."""
    from clusterlens.observe import measure_sky_sigma

    shape = mock_images[0][0].shape
    quantised = DatasetWriter(tmp_path / "q", 4, shape)
    exact = DatasetWriter(tmp_path / "f", 4, shape, storage="float32")
    for i, (image, label) in enumerate(mock_images):
        quantised.write(i, image, label)
        exact.write(i, image, label)
    ds, ref = quantised.finalize(), exact.finalize()
    for i, (image, _) in enumerate(mock_images):
        np.testing.assert_array_equal(ref[i][0], image)
        error = ds[i][0].astype(np.float64) - image
        masked = np.where(image == 0, np.nan, image)  # the synthetic sky's masked patches
        sky = measure_sky_sigma(masked)
        sigma, step = ds.images.noise_sigma[i], ds.images.step[i]
        np.testing.assert_allclose(sigma / sky, 1.0, atol=0.1)
        np.testing.assert_allclose(step, sigma / 8, rtol=1e-12)
        rms = np.sqrt((error**2).mean(axis=(1, 2)))
        np.testing.assert_allclose(rms / sigma, 0.125 / np.sqrt(12), rtol=0.06)
        assert (rms / sky < 0.04).all()
        # at most half a step, plus float32's rounding of the value read back
        bound = 0.5 * step[:, None, None] * (1 + 1e-9) + 2.0**-24 * np.abs(image)
        assert (np.abs(error) <= bound).all()
        assert (np.abs(error.mean(axis=(1, 2))) < 0.003 * sky).all()
        for band in range(3):
            r = np.corrcoef(error[band].ravel(), image[band].ravel())[0, 1]
            assert abs(r) < 0.05
    chunk = (tmp_path / "q" / "images" / "c" / "0" / "0" / "0" / "0").stat().st_size
    chunk_f32 = (tmp_path / "f" / "images" / "c" / "0" / "0" / "0" / "0").stat().st_size
    assert chunk < image.size and chunk_f32 > 4 * chunk


def test_old_float32_datasets_read_as_before(tmp_path):
    """tests/data/dataset_v1 was written by clusterlens before quantised storage (format
    version 1, no image_encoding): it reads bit for bit, and a writer reopening it keeps
    float32."""
    import shutil

    ds = LensDataset(V1_DATASET)
    assert ds.attrs["format_version"] == 1 and "image_encoding" not in ds.attrs
    assert ds.images.encoding == "float32" and ds.images.dtype == np.float32
    for i in range(3):
        expected = np.random.default_rng([7, i]).normal(scale=0.01, size=(3, 8, 8))
        np.testing.assert_array_equal(ds[i][0], expected.astype(np.float32))
    assert list(ds.labels) == [1, 0, 0] and list(ds.params["theta_e"]) == [0.0, 1.5, 3.0]
    copy = tmp_path / "v1"
    shutil.copytree(V1_DATASET, copy)
    assert DatasetWriter(copy, 3, (3, 8, 8), attrs={"seed": 7}).storage == "float32"
    with pytest.raises(DatasetError, match="stores its images as float32.*'quantized'"):
        DatasetWriter(copy, 3, (3, 8, 8), storage="quantized")


def test_a_resumed_run_keeps_the_format_its_dataset_has(tmp_path):
    first = DatasetWriter(tmp_path / "f", 4, SHAPE, storage="float32")
    _write(first, [0, 1])
    resumed = DatasetWriter(tmp_path / "f", 4, SHAPE)  # a newer default does not apply
    assert resumed.storage == "float32"
    _write(resumed, resumed.missing())
    ds = resumed.finalize()
    for i in range(4):
        np.testing.assert_array_equal(ds[i][0], _image(i))
    fine = DatasetWriter(tmp_path / "q", 4, SHAPE, quantization_step=1 / 16)
    again = DatasetWriter(tmp_path / "q", 4, SHAPE, compressed=False)
    assert again.storage == "quantized" and again.quantization_step == 1 / 16
    with pytest.raises(DatasetError, match="step 0.0625 sigma"):
        DatasetWriter(tmp_path / "q", 4, SHAPE, quantization_step=1 / 8)
    _write(fine, range(4))
    np.testing.assert_allclose(fine.finalize().images.step, fine.finalize().images.noise_sigma / 16)


def test_storage_options_are_validated(tmp_path):
    with pytest.raises(ParameterError, match="'storage'.*'quantized', 'float32'.*'float16'"):
        DatasetWriter(tmp_path / "a", 2, SHAPE, storage="float16")
    for bad in (0, 1.5, "x"):
        with pytest.raises(ParameterError, match="'quantization_step'"):
            DatasetWriter(tmp_path / "a", 2, SHAPE, quantization_step=bad)
    with pytest.raises(ParameterError, match="'compressed'.*storage='float32' only"):
        DatasetWriter(tmp_path / "a", 2, SHAPE, storage="quantized", compressed=False)
    assert not (tmp_path / "a").exists()


def test_bands_without_noise_and_huge_ranges_are_stored_safely(tmp_path):
    """A constant and an all-zero band come back exactly (no noise to measure: float32's
    precision); a 10^9-sigma pixel coarsens that band's step instead of overflowing."""
    rng = np.random.default_rng(3)
    image = np.empty(SHAPE, dtype=np.float32)
    image[0], image[1] = 3.25, 0.0
    image[2] = rng.normal(scale=1e-3, size=SHAPE[1:])
    image[2, 4, 4] = 1e6
    writer = DatasetWriter(tmp_path / "ds", 1, SHAPE)
    writer.write(0, image, 1)
    ds = writer.finalize()
    back, step = ds[0][0], ds.images.step[0]
    np.testing.assert_array_equal(back[:2], image[:2])
    assert np.isnan(ds.images.noise_sigma[0][:2]).all() and ds.images.noise_sigma[0][2] > 0
    noise = np.ones(SHAPE[1:], dtype=bool)
    noise[4, 4] = False
    assert step[2] > 1e6 / 2**31
    assert np.abs(back[2] - image[2])[noise].max() <= 0.5 * step[2] * (1 + 1e-6)
    assert back[2, 4, 4] == pytest.approx(1e6, rel=2**-23)  # one float32 step there


def test_dataset_images_index_like_orthogonal_numpy(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 4, SHAPE)
    _write(writer, range(4))
    ds = writer.finalize()
    full = np.stack([ds[i][0] for i in range(4)])
    np.testing.assert_array_equal(np.asarray(ds.images), full)
    np.testing.assert_array_equal(ds.images[1:3], full[1:3])
    np.testing.assert_array_equal(ds.images[[3, 0]], full[[3, 0]])
    np.testing.assert_array_equal(ds.images[2, 1], full[2, 1])
    np.testing.assert_array_equal(ds.images[0, :, 5], full[0, :, 5])
    np.testing.assert_array_equal(ds.images[-1, 2, 3, 4], full[-1, 2, 3, 4])
    np.testing.assert_array_equal(
        ds.images[[0, 2], [0, 2], 1:4], full[[0, 2]][:, [0, 2]][:, :, 1:4]
    )
    mask = np.array([True, False, False, True])
    np.testing.assert_array_equal(ds.images.get_orthogonal_selection((mask,)), full[mask])
    assert ds.images.shape == (4, *SHAPE) and ds.images.dtype == np.float32
    with pytest.raises(ParameterError, match="up to 4 indices.*Got \\(Ellipsis, 0\\)"):
        ds.images[..., 0]


def test_writing_and_reading_a_dataset_never_imports_torch(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        from clusterlens.datasets import Augmentation, LensDataset, write_toy_dataset
        ds = write_toy_dataset({str(tmp_path / "toy")!r}, 4, size=16)
        view = LensDataset(ds.path).torch(crop=12, augmentation=Augmentation(max_shift=1))
        assert view[0][0].shape == (3, 12, 12)
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)


@pytest.mark.parametrize(
    "options", [{}, {"storage": "float32"}, {"compressed": False}], ids=["quantised", "f32", "raw"]
)
def test_whole_image_chunks_read_as_zarr_does(tmp_path, options):
    writer = DatasetWriter(tmp_path / "ds", 5, SHAPE, **options)
    _write(writer, [0, 1, 3, 4])
    ds = LensDataset(tmp_path / "ds", allow_incomplete=True)
    files = ds.images._chunk_files
    assert files is not None  # clusterlens' own layouts take the chunk-file path
    through_files = [ds.images[i] for i in range(-5, 5)]
    ds.images._chunk_files = None
    through_zarr = [ds.images[i] for i in range(-5, 5)]
    for a, b in zip(through_files, through_zarr, strict=True):
        np.testing.assert_array_equal(a, b)  # image 2 is not written: NaN both ways
    assert np.isnan(through_files[2]).all() and files.read(2) is None
    assert files.read(5) is None and files.read(-1) is None
    # a damaged chunk file goes to Zarr, whose error names the image
    chunk = tmp_path / "ds" / "images" / "c" / "3" / "0" / "0" / "0"
    chunk.write_bytes(b"not a chunk")
    assert files.read(3) is None
    ds.images._chunk_files = files
    with pytest.raises(DatasetError, match="Image 3 .* cannot be read"):
        ds[2]  # the view holds images 0, 1, 3, 4


def test_other_array_layouts_are_left_to_zarr(tmp_path):
    from clusterlens.datasets._chunks import WholeImageChunks

    writer = DatasetWriter(tmp_path / "ds", 2, SHAPE)
    _write(writer, range(2))
    writer.finalize()
    meta_path = tmp_path / "ds" / "images" / "zarr.json"
    original = json.loads(meta_path.read_text())
    assert WholeImageChunks.open(meta_path.parent) is not None

    def changed(edit):
        meta = json.loads(json.dumps(original))
        edit(meta)
        meta_path.write_text(json.dumps(meta))
        return WholeImageChunks.open(meta_path.parent)

    sharded = {"name": "sharding_indexed", "configuration": {}}
    edits = [
        lambda m: m.update(zarr_format=2),
        lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[2, *SHAPE]),
        lambda m: m["chunk_key_encoding"]["configuration"].update(separator="."),
        lambda m: m["chunk_key_encoding"].update(name="v2"),
        lambda m: m.update(codecs=[sharded]),
        lambda m: m["codecs"].append({"name": "crc32c"}),
        lambda m: m["codecs"][0]["configuration"].update(endian="big"),
        lambda m: m.update(data_type="float64"),
        lambda m: m.pop("chunk_grid"),
    ]
    for edit in edits:
        assert changed(edit) is None
    meta_path.unlink()
    assert WholeImageChunks.open(meta_path.parent) is None
