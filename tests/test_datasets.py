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


def _write(writer, indices):
    for i in indices:
        writer.write(i, _image(i), i % 2, {"theta_e": 0.1 * i, "cluster": f"c{i}"})


def test_write_finalize_read_roundtrip(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 7, SHAPE, creator="test", attrs={"depth": 23.4})
    _write(writer, range(7))
    ds = writer.finalize()
    assert len(ds) == 7 and ds.complete
    np.testing.assert_array_equal(ds.images[3], _image(3))
    image, label = ds[4]
    np.testing.assert_array_equal(image, _image(4))
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


def test_uncompressed_images_read_back_the_same(tmp_path):
    writer = DatasetWriter(tmp_path / "raw", 2, SHAPE, compressed=False)
    _write(writer, range(2))
    np.testing.assert_array_equal(writer.finalize()[1][0], _image(1))


def test_incomplete_dataset_is_refused_then_readable_on_request(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 5, SHAPE)
    _write(writer, [0, 2, 3])
    with pytest.raises(DatasetError, match="incomplete.*3 of 5"):
        LensDataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="2 of 5 images are not written"):
        writer.finalize()
    partial = LensDataset(tmp_path / "ds", allow_incomplete=True)
    assert partial.indices.tolist() == [0, 2, 3] and len(partial) == 3
    np.testing.assert_array_equal(partial[1][0], _image(2))
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
        np.testing.assert_array_equal(ds[i][0], _image(i))
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
    np.testing.assert_array_equal(LensDataset(tmp_path / "ds").images[2], _image(2))


def test_a_lost_completion_marker_is_named_and_restored(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", 5, SHAPE, attrs={"seed": 1})
    _write(writer, range(5))
    writer.finalize()
    (tmp_path / "ds" / "complete.json").unlink()
    with pytest.raises(DatasetError, match="all 5 images.*complete.json is missing"):
        LensDataset(tmp_path / "ds")
    ds = DatasetWriter(tmp_path / "ds", 5, SHAPE, attrs={"seed": 1}).finalize()
    assert ds.complete and list(ds.labels) == [0, 1, 0, 1, 0]
    np.testing.assert_array_equal(ds.images[4], _image(4))
