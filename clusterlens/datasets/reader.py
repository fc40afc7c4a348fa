"""Reading a finished (or, on request, unfinished) dataset: :class:`LensDataset`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from clusterlens._validation import check_scalar
from clusterlens.datasets._chunks import WholeImageChunks
from clusterlens.datasets._format import (
    _COMPLETE,
    DatasetError,
    _finished_but_unmarked,
    _read_metadata,
    _read_records,
    _written_indices,
)
from clusterlens.datasets.encoding import (
    _RECORD_KEY,
    _SCALING_ARRAYS,
    DatasetImages,
    image_encoding,
)
from clusterlens.datasets.loading import Augmentation, TorchLensDataset, center_crop
from clusterlens.errors import ParameterError

__all__ = ["LensDataset"]


class LensDataset:
    """A finished dataset on disk, opened for reading.

    Parameters
    ----------
    path : str or Path
        The dataset directory written by :class:`DatasetWriter`.
    allow_incomplete : bool
        Open a dataset whose writing has not been finalised; only the images written so far
        are visible (``indices`` lists them) and the labels come from their records.

    Attributes
    ----------
    images : DatasetImages, shape (N, n_bands, H, W)
        The pixels as float32 nanomaggies, read and decoded lazily (``images[i]``;
        ``images.encoding`` says how they are stored, ``images.step`` the quantisation step
        of each image and band and ``images.noise_sigma`` the noise measured on it).
    labels : numpy.ndarray of int8, shape (N,)
        1 for lenses, 0 for non-lenses (-1 for images not written, incomplete datasets only).
    params : astropy.table.Table
        One row per visible image with ``index``, ``label`` and the simulator's parameters.
    indices : numpy.ndarray
        The dataset positions this object shows; ``dataset[k]`` is image ``indices[k]``.
    bands, pixel_scale, image_shape, attrs : metadata from the writer.
    """

    def __init__(self, path, *, allow_incomplete: bool = False, _indices=None):
        import zarr

        self.path = Path(path)
        meta = _read_metadata(self.path)
        self.complete = (self.path / _COMPLETE).exists()
        if not self.complete and not allow_incomplete:
            if _finished_but_unmarked(self.path, meta["n_images"]) is not None:
                raise DatasetError(
                    f"The dataset at {self.path} has all {meta['n_images']} images and its "
                    f"parameter table, but its completion marker {_COMPLETE} is missing; rerun "
                    "the command that wrote it (or DatasetWriter(...).finalize()) to mark it "
                    "complete."
                )
            n_done = _written_indices(self.path).size
            raise DatasetError(
                f"The dataset at {self.path} is incomplete ({n_done} of {meta['n_images']} "
                "images written, not finalised). Finish writing it and call "
                "DatasetWriter.finalize(), or pass allow_incomplete=True to read what is there."
            )
        self.attrs = meta
        self.bands = tuple(meta["bands"])
        self.pixel_scale = float(meta["pixel_scale_arcsec"])
        self.image_shape = tuple(meta["image_shape"])
        encoding = image_encoding(meta)["name"]
        scaling = {}
        if self.complete:
            self.labels = zarr.open_array(self.path / "labels", mode="r")[:]
            params = _read_parquet_table(self.path / "params.parquet")
            if encoding == "quantized":
                scaling = {
                    name: zarr.open_array(self.path / name, mode="r")[:]
                    for name, _ in _SCALING_ARRAYS
                }
        else:
            records = _read_records(self.path)
            self.labels = np.full(meta["n_images"], -1, dtype=np.int8)
            for r in records:
                self.labels[r["index"]] = r["label"]
            params = _records_table(records)
            if encoding == "quantized":
                scaling = _records_scaling(records, meta["n_images"], len(self.bands))
        self.images = DatasetImages(
            zarr.open_array(self.path / "images", mode="r"),
            encoding,
            step=scaling.get("image_step"),
            offset=scaling.get("image_offset"),
            noise_sigma=scaling.get("noise_sigma"),
            chunks=WholeImageChunks.open(self.path / "images"),
        )
        for name, unit in (meta.get("user") or {}).get("param_units", {}).items():
            if name in params.colnames:  # the physical columns of a mock dataset
                params[name].unit = unit
        all_indices = np.asarray(params["index"], dtype=np.int64)
        if _indices is None:
            self.indices = all_indices
            self.params = params
        else:
            self.indices = np.asarray(_indices, dtype=np.int64)
            row_of = np.full(meta["n_images"], -1, dtype=np.int64)
            row_of[all_indices] = np.arange(all_indices.size)
            rows = row_of[self.indices]
            if (rows < 0).any():
                raise ParameterError("Some requested indices are not written in this dataset.")
            self.params = params[rows]

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, k: int) -> tuple[np.ndarray, int]:
        """Image ``k`` of this view as ((band, y, x) float32 array, label).

        Raises
        ------
        DatasetError
            The image's chunk cannot be decoded, or holds NaN (a missing chunk reads as the
            array's NaN fill value): named, instead of a decoder's traceback or an epoch of
            NaN weights.
        """
        i = int(self.indices[k])
        try:
            image = np.asarray(self.images[i])
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # zarr/numcodecs name no image in their decode errors
            raise DatasetError(
                f"Image {i} of the dataset at {self.path} cannot be read (a corrupt chunk?): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if not np.isfinite(image).all():
            raise DatasetError(
                f"Image {i} of the dataset at {self.path} holds NaN/inf pixels (its chunk is "
                "missing or damaged); rewrite that image or make the dataset again."
            )
        return image, int(self.labels[i])

    @property
    def view_labels(self) -> np.ndarray:
        """Labels of the images of this view, in view order."""
        return self.labels[self.indices]

    def subset(self, indices) -> LensDataset:
        """A view of some of the images, by dataset index (no data is copied)."""
        return LensDataset(self.path, allow_incomplete=not self.complete, _indices=indices)

    def split(self, fraction: float, *, seed: int = 0) -> tuple[LensDataset, LensDataset]:
        """Split into (train, validation) views, stratified by label.

        ``fraction`` (0 < f < 1) of each class goes to the validation view, at random.
        """
        fraction = check_scalar(
            fraction,
            "fraction",
            "LensDataset.split",
            low=0,
            high=1,
            low_inclusive=False,
            high_inclusive=False,
        )
        rng = np.random.default_rng(seed)
        labels = self.view_labels
        val = []
        for value in np.unique(labels):
            members = self.indices[labels == value]
            n_val = max(1, math.floor(fraction * members.size + 0.5))
            val.extend(rng.choice(members, size=n_val, replace=False).tolist())
        val_set = np.array(sorted(val), dtype=np.int64)
        train_set = np.setdiff1d(self.indices, val_set)
        return self.subset(train_set), self.subset(val_set)

    def crop(self, k: int, size: int) -> np.ndarray:
        """Image ``k`` of this view cut to its central ``size`` x ``size`` pixels."""
        return np.array(center_crop(self[k][0], size))

    def torch(
        self, *, crop: int | None = None, augmentation: Augmentation | None = None
    ) -> TorchLensDataset:
        """A map-style PyTorch dataset over this view (see :class:`TorchLensDataset`)."""
        return TorchLensDataset(self, crop=crop, augmentation=augmentation)

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        return (
            f"LensDataset({str(self.path)!r}: {len(self)} images {self.image_shape}, "
            f"{int((self.view_labels == 1).sum())} lenses, {state})"
        )


def _read_parquet_table(path: Path):
    """Read a Parquet file into an astropy Table (nulls become masked entries).

    pyarrow is read directly because astropy's own Parquet reader needs pandas.
    """
    import pyarrow.parquet as pq
    from astropy.table import MaskedColumn, Table

    try:
        arrow = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DatasetError(f"The parameter table {path} cannot be read: {exc}") from exc
    table = Table()
    for name in arrow.column_names:
        column = arrow.column(name)
        values = column.to_numpy(zero_copy_only=False)
        if column.null_count:
            mask = column.is_null().to_numpy(zero_copy_only=False)
            fill = next(v for v, m in zip(values, mask, strict=True) if not m)
            values = np.array([fill if m else v for v, m in zip(values, mask, strict=True)])
            table[name] = MaskedColumn(values, mask=mask)
        else:
            table[name] = values.astype(str) if values.dtype == object else values
    return table


def _records_scaling(records: list[dict], n_images: int, n_bands: int) -> dict:
    """The quantisation arrays of an unfinished dataset, from its records (NaN: not written)."""
    out = {}
    for name, dtype in _SCALING_ARRAYS:
        values = np.full((n_images, n_bands), np.nan, dtype=dtype)
        key = _RECORD_KEY[name]
        for r in records:
            values[r["index"]] = [np.nan if v is None else v for v in r["encoding"][key]]
        out[name] = values
    return out


def _records_table(records: list[dict]):
    from astropy.table import Table

    keys = list(dict.fromkeys(k for r in records for k in r["params"]))
    columns = {
        "index": np.array([r["index"] for r in records], dtype=np.int64),
        "label": np.array([r["label"] for r in records], dtype=np.int8),
    }
    for key in keys:
        values = [r["params"].get(key) for r in records]
        if any(v is None for v in values):
            from astropy.table import MaskedColumn

            fill = next((v for v in values if v is not None), 0)
            columns[key] = MaskedColumn(
                [fill if v is None else v for v in values], mask=[v is None for v in values]
            )
        else:
            columns[key] = values
    return Table(columns)
