"""Writing a dataset from many processes at once: :class:`DatasetWriter`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from numbers import Integral
from pathlib import Path

import numpy as np

from clusterlens import __version__
from clusterlens._io import atomic_path, atomic_write_text
from clusterlens._provenance import iso_utc
from clusterlens._validation import check_int, check_scalar
from clusterlens.datasets._format import (
    _COMPLETE,
    _RECORDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    DatasetError,
    _check_index,
    _check_params,
    _finished_but_unmarked,
    _read_metadata,
    _read_records,
    _record_path,
    _written_indices,
)
from clusterlens.datasets.encoding import (
    _RECORD_KEY,
    _SCALING_ARRAYS,
    DEFAULT_QUANTIZATION_STEP,
    ENCODINGS,
    NOISE_ESTIMATOR,
    image_encoding,
    quantize,
    quantized_codecs,
)
from clusterlens.datasets.reader import LensDataset
from clusterlens.errors import ParameterError

__all__ = ["DatasetWriter"]


class DatasetWriter:
    """Create (or reopen) a dataset directory and write images into it.

    Many processes may hold a writer on the same ``path`` and call :meth:`write` with
    distinct indices at once; the first one to arrive creates the directory (atomically) and
    the others check that it has the shape they expect.  A writer pickles cheaply, so it can
    be sent to Dask workers.

    Parameters
    ----------
    path : str or Path
        The dataset directory.
    n_images : int
        Number of images N the dataset will hold.
    image_shape : tuple of 3 ints
        (n_bands, height, width) of every image in pixels; the paper's cutouts are
        (3, 371, 371) before the centre crop to (3, 223, 223).
    bands : tuple of str
        Band names, one per image plane, default ``("g", "r", "z")``.
    pixel_scale : float
        Pixel scale in arcsec (Legacy Surveys: 0.262).
    units : str
        Flux units of the pixels, default ``"nanomaggy"``.
    creator : str
        Who or what wrote the dataset (for example ``"clusterlens.mock 0.1"``).
    attrs : dict, optional
        Further JSON-serialisable metadata (for example the simulator's configuration).
    storage : {"quantized", "float32"}, optional
        How pixels are stored (:mod:`clusterlens.datasets.encoding`).  ``"quantized"``, the
        default of a new dataset: integers of a step of ``quantization_step`` x each band's
        noise, measured per image (RMS error 0.036 sigma at the default 1/8; about 0.10 MB
        per 3 x 223 x 223 cutout instead of 0.55 MB).  ``"float32"``: lossless, the format of
        datasets written before quantised storage (format version 1); use it for images
        without noise.  Default ``None``: ``"quantized"`` for a new dataset, and whatever an
        existing dataset uses when it is reopened (so a resumed run continues in its own
        format); ``compressed=False`` without ``storage`` still means raw float32 chunks.
    quantization_step : float, optional
        The step of quantised storage in units of the noise sigma, in (0, 1]; default 1/8
        (``None``: 1/8, or the existing dataset's).
    compressed : bool
        ``"float32"`` storage only: compress image chunks with Zstandard (Zarr's default).
        Noise-dominated cutouts shrink only ~7% that way while reading takes ~2x longer.
        Quantised images are always compressed; they read a little faster than zstd float32
        and about half as fast as raw float32 (``benchmarks/bench_storage.py``).
    overwrite : bool
        Delete an existing dataset at ``path`` first.  Never use this from many workers.
    """

    def __init__(
        self,
        path,
        n_images: int,
        image_shape=(3, 223, 223),
        *,
        bands=("g", "r", "z"),
        pixel_scale: float = 0.262,
        units: str = "nanomaggy",
        creator: str = "",
        attrs: dict | None = None,
        storage: str | None = None,
        quantization_step: float | None = None,
        compressed: bool = True,
        overwrite: bool = False,
    ):
        owner = "DatasetWriter"
        n_images = check_int(n_images, "n_images", owner, low=1)
        shape = tuple(image_shape)
        if len(shape) != 3 or not all(
            isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape
        ):
            raise ParameterError(
                f"The 'image_shape' parameter of {owner} must be 3 positive integers "
                f"(n_bands, height, width). Got {image_shape!r} instead."
            )
        bands = tuple(str(b) for b in bands)
        if len(bands) != shape[0]:
            raise ParameterError(
                f"The 'bands' parameter of {owner} must name one band per image plane "
                f"({shape[0]}). Got {bands!r} instead."
            )
        self.path = Path(path)
        self.n_images = int(n_images)
        self.image_shape = tuple(int(s) for s in shape)
        self.bands = bands
        self.pixel_scale = check_scalar(
            pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False
        )
        self.units = str(units)
        self.creator = str(creator)
        self.attrs = dict(attrs or {})
        self.compressed = bool(compressed)
        if storage is not None and storage not in ENCODINGS:
            raise ParameterError(
                f"The 'storage' parameter of {owner} must be one of {ENCODINGS} or None. "
                f"Got {storage!r} instead."
            )
        if quantization_step is not None:
            quantization_step = check_scalar(
                quantization_step, "quantization_step", owner, low=0, high=1, low_inclusive=False
            )
        if storage == "quantized" and not self.compressed:
            raise ParameterError(
                f"The 'compressed' parameter of {owner} applies to storage='float32' only: "
                "quantised images are always compressed. Pass storage='float32' for raw chunks."
            )
        # what this run asked for (None: not asked); the dataset's own settings win on reopen
        self._asked = (storage, quantization_step)
        self.storage = storage or ("quantized" if self.compressed else "float32")
        self.quantization_step = (
            DEFAULT_QUANTIZATION_STEP if quantization_step is None else quantization_step
        )
        self._images = None
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        if not self.path.exists():
            self._create()
        self._check_existing()

    # -- creation -----------------------------------------------------------------------
    def _encoding_metadata(self) -> dict:
        if self.storage == "float32":
            return {"name": "float32", "compressed": self.compressed}
        return {
            "name": "quantized",
            "dtype": "int32",
            "step_in_noise_sigma": self.quantization_step,
            "noise_estimator": NOISE_ESTIMATOR,
            "pixel": "image_offset + image_step * images (per image and band)",
        }

    def _metadata(self) -> dict:
        return {
            "format": FORMAT_NAME,
            # version 1 readers read float32 datasets; only quantised ones need version 2
            "format_version": 1 if self.storage == "float32" else FORMAT_VERSION,
            "image_encoding": self._encoding_metadata(),
            "n_images": self.n_images,
            "image_shape": list(self.image_shape),
            "bands": list(self.bands),
            "pixel_scale_arcsec": self.pixel_scale,
            "units": self.units,
            "creator": self.creator,
            "clusterlens_version": __version__,
            "created": iso_utc(),
            "user": self.attrs,
        }

    def _create(self) -> None:
        import zarr

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        try:
            group = zarr.open_group(tmp, mode="w", zarr_format=3, attributes=self._metadata())
            quantized = self.storage == "quantized"
            group.create_array(
                "images",
                shape=(self.n_images, *self.image_shape),
                chunks=(1, *self.image_shape),
                dtype="int32" if quantized else "float32",
                fill_value=-1 if quantized else np.nan,
                compressors=quantized_codecs()
                if quantized
                else ("auto" if self.compressed else None),
                dimension_names=("index", "band", "y", "x"),
            )
            if quantized:  # per image and band, gathered from the records by finalize()
                for name, dtype in _SCALING_ARRAYS:
                    group.create_array(
                        name,
                        shape=(self.n_images, self.image_shape[0]),
                        chunks=(min(self.n_images, 1 << 20), self.image_shape[0]),
                        dtype=dtype,
                        fill_value=np.nan,
                        dimension_names=("index", "band"),
                    )
            group.create_array(
                "labels",
                shape=(self.n_images,),
                chunks=(min(self.n_images, 1 << 20),),
                dtype="int8",
                fill_value=-1,
                dimension_names=("index",),
            )
            (tmp / _RECORDS).mkdir()
            try:
                # A directory rename is atomic; if another worker won the race it fails and
                # we use theirs.
                os.rename(tmp, self.path)
            except OSError:
                if not self.path.exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _check_existing(self) -> None:
        meta = _read_metadata(self.path)
        for key, mine in (
            ("n_images", self.n_images),
            ("image_shape", list(self.image_shape)),
            ("bands", list(self.bands)),
        ):
            if meta.get(key) != mine:
                raise DatasetError(
                    f"The dataset at {self.path} has {key} = {meta.get(key)!r}, but this "
                    f"writer was asked for {mine!r}. Use another path or overwrite=True."
                )
        encoding = image_encoding(meta)
        storage = encoding["name"]
        step = encoding.get("step_in_noise_sigma", self.quantization_step)
        asked_storage, asked_step = self._asked
        if (asked_storage is not None and asked_storage != storage) or (
            storage == "quantized" and asked_step is not None and asked_step != step
        ):
            theirs = storage if storage == "float32" else f"{storage}, step {step} sigma"
            raise DatasetError(
                f"The dataset at {self.path} stores its images as {theirs}, but this writer "
                f"was asked for storage={asked_storage!r}, quantization_step={asked_step!r}. "
                "Leave them unset to continue it, or use another path or overwrite=True."
            )
        self.storage, self.quantization_step = storage, step
        self.compressed = bool(encoding.get("compressed", True))
        # The metadata is the owner record: written once, atomically, by whichever run
        # created the dataset. A run with other settings (another seed, another
        # configuration) must not add its images to it; identical runs may cooperate.
        theirs, mine = meta.get("user") or {}, json.loads(json.dumps(self.attrs))
        if theirs and mine and theirs != mine:
            changed = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
            raise DatasetError(
                f"The dataset at {self.path} is being written by another run with a different "
                f"{', '.join(changed)}; adding to it would mix two datasets. Use another path "
                "or overwrite=True."
            )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_images"] = None
        return state

    @property
    def _image_array(self):
        if self._images is None:
            import zarr

            self._images = zarr.open_array(self.path / "images", mode="r+")
        return self._images

    # -- writing ------------------------------------------------------------------------
    def write(self, index: int, image, label: int, params: dict | None = None) -> None:
        """Store image number ``index`` with its label and parameters.

        Parameters
        ----------
        index : int
            Position in the dataset, 0 <= index < N.  Rewriting an index replaces it; a
            complete (finalized) dataset is never changed, so this then does nothing.
        image : array_like, shape ``image_shape``
            Finite pixel values in ``units`` (nanomaggies), bands in the dataset's order.
        label : int
            1 for a lens (positive), 0 for a non-lens.
        params : dict of str -> scalar, optional
            Parameters of this image (for example Einstein radius in arcsec, source
            redshift, cluster id); gathered into ``params.parquet`` by :meth:`finalize`.
        """
        owner = "DatasetWriter.write"
        index = _check_index(index, self.n_images, owner)
        try:
            img = np.asarray(image, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"The 'image' parameter of {owner} must be an array of numbers."
            ) from exc
        if img.shape != self.image_shape:
            what = (
                "band count"
                if img.ndim == 3 and img.shape[1:] == self.image_shape[1:]
                else ("shape")
            )
            raise ParameterError(
                f"The 'image' parameter of {owner} must have shape {self.image_shape} "
                f"(bands {', '.join(self.bands)}; height; width). Got {img.shape} instead "
                f"(wrong {what})."
            )
        bad = ~np.isfinite(img)
        if bad.any():
            b, y, x = (int(v) for v in np.argwhere(bad)[0])
            raise ParameterError(
                f"The 'image' parameter of {owner} must hold finite values. Image {index} "
                f"has {int(bad.sum())} NaN/inf pixel(s), the first in band "
                f"{self.bands[b]!r} at (y, x) = ({y}, {x})."
            )
        if (
            isinstance(label, bool)
            or not isinstance(label, Integral | np.integer)
            or int(label) not in (0, 1)
        ):
            raise ParameterError(
                f"The 'label' parameter of {owner} must be 0 (non-lens) or 1 (lens). "
                f"Got {label!r} instead."
            )
        record = {"index": index, "label": int(label), "params": _check_params(params, owner)}
        if self.complete:  # finalized, by this run or a cooperating one: never changed again
            return
        if self.storage == "quantized":
            stored, step, offset, sigma = quantize(img, self.quantization_step)
            record["encoding"] = {
                "step": step.tolist(),
                "offset": offset.tolist(),
                "noise_sigma": [float(v) if np.isfinite(v) else None for v in sigma],
            }
            self._image_array[index] = stored
        else:
            self._image_array[index] = img
        # The record is written after the image: its presence means the image is stored.
        path = _record_path(self.path, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not flushed to disk: the image beside it is not either, and a record lost to a power
        # cut only makes the image count as not written (it is simulated again); flushing
        # would cost ~10 ms an image.
        atomic_write_text(path, json.dumps(record), durable=False)

    def written(self) -> np.ndarray:
        """Sorted indices of the images already stored."""
        return _written_indices(self.path)

    def missing(self) -> np.ndarray:
        """Sorted indices not yet written: what a resumed run still has to make."""
        done = np.zeros(self.n_images, dtype=bool)
        done[self.written()] = True
        return np.flatnonzero(~done)

    @property
    def complete(self) -> bool:
        """Whether :meth:`finalize` has finished."""
        return (self.path / _COMPLETE).exists()

    def finalize(self) -> LensDataset:
        """Gather the records into ``params.parquet`` and ``labels``; mark complete.

        Call once, from one process, after every index has been written.  Calling it again
        on a complete dataset does nothing.

        Returns
        -------
        LensDataset
            The finished dataset, opened for reading.
        """
        if self.complete:
            # a cooperating run may have left records behind after the first finalize
            shutil.rmtree(self.path / _RECORDS, ignore_errors=True)
            return LensDataset(self.path)
        labels = _finished_but_unmarked(self.path, self.n_images)
        if labels is not None:  # only the marker was lost: write it again
            self._mark_complete(labels)
            return LensDataset(self.path)
        missing = self.missing()
        if missing.size:
            raise DatasetError(
                f"Cannot finalize the dataset at {self.path}: {missing.size} of "
                f"{self.n_images} images are not written yet (first missing: "
                f"{missing[:5].tolist()}). Write them (see missing()) and try again."
            )
        import pyarrow as pa
        import pyarrow.parquet as pq
        import zarr

        records = _read_records(self.path)
        labels = np.array([r["label"] for r in records], dtype=np.int8)
        keys = list(dict.fromkeys(k for r in records for k in r["params"]))
        columns = {
            "index": pa.array([r["index"] for r in records], type=pa.int64()),
            "label": pa.array(labels, type=pa.int8()),
        }
        for key in keys:  # every parameter any image has; None (null) where one lacks it
            columns[key] = pa.array([r["params"].get(key) for r in records])
        table = pa.table(columns)
        with atomic_path(self.path / "params.parquet") as tmp:
            pq.write_table(table, tmp)
        if self.storage == "quantized":
            for name, dtype in _SCALING_ARRAYS:
                key = _RECORD_KEY[name]
                values = [[np.nan if v is None else v for v in r["encoding"][key]] for r in records]
                zarr.open_array(self.path / name, mode="r+")[:] = np.array(values, dtype=dtype)
        zarr.open_array(self.path / "labels", mode="r+")[:] = labels
        self._mark_complete(labels)
        shutil.rmtree(self.path / _RECORDS, ignore_errors=True)
        return LensDataset(self.path)

    def _mark_complete(self, labels: np.ndarray) -> None:
        summary = {
            "n_images": self.n_images,
            "n_lenses": int(labels.sum()),
            "n_non_lenses": int((labels == 0).sum()),
            "finalized_by": f"clusterlens {__version__}",
            "finalized": iso_utc(),
        }
        atomic_write_text(self.path / _COMPLETE, json.dumps(summary))

    def __repr__(self) -> str:
        return (
            f"DatasetWriter({str(self.path)!r}, n_images={self.n_images}, "
            f"image_shape={self.image_shape})"
        )
