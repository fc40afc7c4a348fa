"""Training datasets on disk: images, labels and the parameters that made them.

A dataset is one directory that is also a Zarr v3 group::

    DIR/
      zarr.json            group metadata; its attributes describe the dataset
      images/              Zarr array (N, n_bands, H, W) float32, one image per chunk
      labels/              Zarr array (N,) int8: 1 lens, 0 non-lens (-1 until finalised)
      params.parquet       one row per image: ``index``, ``label`` and the simulator's
                           parameters (written by DatasetWriter.finalize)
      complete.json        written last, atomically: the dataset is complete
      _records/            per-image records while the dataset is being written

Images are float32 arrays shaped (band, y, x), bands in the order g, r, z, in nanomaggies
(AB zero point 22.5), like Legacy Surveys cutouts.  One image per chunk means that any number
of processes (for example 50 Dask workers) can write distinct indices at once without locks:
each chunk is its own file, written to a temporary name and renamed.  An image counts as
written only when its record (label and parameters) exists, and the record is written after
the image data, so a run killed at any moment resumes with :meth:`DatasetWriter.missing`
without rewriting finished images and without trusting half-written ones.

:meth:`DatasetWriter.finalize` gathers the records into ``params.parquet`` and the ``labels``
array and then writes ``complete.json``; until then :class:`LensDataset` refuses to open the
dataset unless asked to (``allow_incomplete=True``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from clusterlens import __version__
from clusterlens._validation import check_scalar
from clusterlens.errors import ClusterlensError, ParameterError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Augmentation",
    "DatasetError",
    "DatasetWriter",
    "LensDataset",
    "TorchLensDataset",
    "center_crop",
    "write_toy_dataset",
]

FORMAT_NAME = "clusterlens-dataset"
FORMAT_VERSION = 1
_RESERVED_PARAMS = ("index", "label")
_COMPLETE = "complete.json"
_RECORDS = "_records"


class DatasetError(ClusterlensError):
    """A dataset on disk is missing, incomplete, corrupt or of another shape."""


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _record_path(root: Path, index: int) -> Path:
    # Subdirectories of 1000 keep directory listings short for 10^5 - 10^6 images.
    return root / _RECORDS / f"{index // 1000:05d}" / f"{index:09d}.json"


def _check_index(index, n_images: int, owner: str) -> int:
    if isinstance(index, bool) or not isinstance(index, Integral | np.integer):
        raise ParameterError(
            f"The 'index' parameter of {owner} must be an integer in the range "
            f"[0, {n_images - 1}]. Got {index!r} of type {type(index).__name__} instead."
        )
    if not 0 <= int(index) < n_images:
        raise ParameterError(
            f"The 'index' parameter of {owner} must be an integer in the range "
            f"[0, {n_images - 1}]. Got {index} instead."
        )
    return int(index)


def _check_params(params, owner: str) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ParameterError(
            f"The 'params' parameter of {owner} must be a dict of scalars. "
            f"Got {type(params).__name__} instead."
        )
    out = {}
    for key, value in params.items():
        if not isinstance(key, str) or key in _RESERVED_PARAMS:
            raise ParameterError(
                f"The 'params' keys of {owner} must be strings other than "
                f"{_RESERVED_PARAMS}. Got {key!r}."
            )
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, bool | Integral | Real | str):
            raise ParameterError(
                f"The 'params' values of {owner} must be scalars (number, bool or str). "
                f"Got {type(value).__name__} for {key!r}."
            )
        out[key] = (
            float(value)
            if isinstance(value, Real) and not isinstance(value, bool | Integral)
            else value
        )
    return out


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
    compressed : bool
        Compress image chunks with Zstandard (Zarr's default).  Noise-dominated cutouts
        shrink only ~7% while reading takes ~2x longer (measured: 2.6-3.8 ms against
        1.3-2.2 ms per 3 x 371 x 371 image), so pass False for datasets read at GPU
        training rates.
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
        compressed: bool = True,
        overwrite: bool = False,
    ):
        owner = "DatasetWriter"
        if isinstance(n_images, bool) or not isinstance(n_images, Integral) or n_images < 1:
            raise ParameterError(
                f"The 'n_images' parameter of {owner} must be a positive integer. "
                f"Got {n_images!r} instead."
            )
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
        self._images = None
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        if not self.path.exists():
            self._create()
        self._check_existing()

    # -- creation -----------------------------------------------------------------------
    def _metadata(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "n_images": self.n_images,
            "image_shape": list(self.image_shape),
            "bands": list(self.bands),
            "pixel_scale_arcsec": self.pixel_scale,
            "units": self.units,
            "creator": self.creator,
            "clusterlens_version": __version__,
            "user": self.attrs,
        }

    def _create(self) -> None:
        import zarr

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        try:
            group = zarr.open_group(tmp, mode="w", zarr_format=3, attributes=self._metadata())
            group.create_array(
                "images",
                shape=(self.n_images, *self.image_shape),
                chunks=(1, *self.image_shape),
                dtype="float32",
                fill_value=np.nan,
                compressors="auto" if self.compressed else None,
                dimension_names=("index", "band", "y", "x"),
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
        self._image_array[index] = img
        # The record is written after the image: its presence means the image is stored.
        path = _record_path(self.path, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(path, json.dumps(record))

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
        tmp = self.path / f".params.{uuid.uuid4().hex}.parquet"
        pq.write_table(table, tmp)
        os.replace(tmp, self.path / "params.parquet")
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
        }
        _atomic_write_text(self.path / _COMPLETE, json.dumps(summary))

    def __repr__(self) -> str:
        return (
            f"DatasetWriter({str(self.path)!r}, n_images={self.n_images}, "
            f"image_shape={self.image_shape})"
        )


def _read_metadata(path: Path) -> dict:
    meta_file = path / "zarr.json"
    if not meta_file.exists():
        raise DatasetError(f"No clusterlens dataset at {path} (no zarr.json there).")
    try:
        meta = json.loads(meta_file.read_text()).get("attributes", {})
    except (json.JSONDecodeError, AttributeError) as exc:
        raise DatasetError(f"The dataset metadata {meta_file} is corrupt: {exc}") from exc
    if meta.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is a Zarr group but not a clusterlens dataset.")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise DatasetError(
            f"The dataset at {path} has format version {meta['format_version']}; this "
            f"clusterlens ({__version__}) reads up to {FORMAT_VERSION}. Upgrade clusterlens."
        )
    return meta


def _written_indices(path: Path) -> np.ndarray:
    root = path / _RECORDS
    if not root.exists():
        return np.zeros(0, dtype=np.int64)
    found = [
        int(name[:-5])
        for sub in os.scandir(root)
        if sub.is_dir()
        for name in os.listdir(sub.path)
        if name.endswith(".json") and not name.startswith(".")
    ]
    return np.array(sorted(found), dtype=np.int64)


def _finished_but_unmarked(path: Path, n_images: int) -> np.ndarray | None:
    """The labels of a dataset whose images and ``params.parquet`` are all written but whose
    completion marker is missing (lost after the records were gathered), else ``None``."""
    table = path / "params.parquet"
    if (path / _COMPLETE).exists() or not table.exists() or _written_indices(path).size:
        return None
    import pyarrow.parquet as pq

    try:
        cols = pq.read_table(table, columns=["index", "label"]).to_pydict()
    except Exception:  # unreadable: not finished after all
        return None
    if sorted(cols["index"]) != list(range(n_images)):
        return None
    labels = np.empty(n_images, dtype=np.int8)
    labels[np.asarray(cols["index"])] = cols["label"]
    return labels


def _read_records(path: Path) -> list[dict]:
    return [json.loads(_record_path(path, i).read_text()) for i in _written_indices(path)]


def center_crop(images, size: int) -> np.ndarray:
    """Cut the central ``size`` x ``size`` pixels out of images shaped (..., H, W).

    The crop keeps the centre pixel of an odd-sized image at the centre of the result (the
    paper cuts 371 -> 223 pixels, i.e. 100" -> 60" at 0.27"/pixel, dropping 74 pixels on
    each side).  Works on numpy arrays and torch tensors; returns a view.
    """
    height, width = images.shape[-2], images.shape[-1]
    if (
        isinstance(size, bool)
        or not isinstance(size, Integral)
        or not 0 < size <= min(height, width)
    ):
        raise ParameterError(
            f"The 'size' parameter of center_crop must be an integer in the range "
            f"[1, {min(height, width)}]. Got {size!r} instead."
        )
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size]


@dataclass(frozen=True)
class Augmentation:
    """Random symmetry transformations that keep a lens a lens.

    Rotations by multiples of 90 degrees and flips map an arc onto an arc without
    interpolating pixels; shifts by a few whole pixels move the cluster off the exact centre
    (when the stored image is larger than the crop the window moves, otherwise the image is
    padded by reflection).  The draw of image ``i`` in epoch ``e`` depends only on
    ``(seed, e, i)``, so it is the same with any number of loader workers and after a resume.

    Parameters
    ----------
    rotations, flips : bool
        Apply random 90-degree rotations / a random left-right flip.
    max_shift : int
        Largest shift in pixels along each axis (0 for none).
    seed : int
        Seed of the augmentation draws.
    """

    rotations: bool = True
    flips: bool = True
    max_shift: int = 4
    seed: int = 0

    def __post_init__(self):
        if (
            isinstance(self.max_shift, bool)
            or not isinstance(self.max_shift, Integral)
            or (self.max_shift < 0)
        ):
            raise ParameterError(
                "The 'max_shift' parameter of Augmentation must be a non-negative integer. "
                f"Got {self.max_shift!r} instead."
            )

    def apply(self, image: np.ndarray, crop: int | None, epoch: int, index: int) -> np.ndarray:
        """Augment one (band, y, x) image and cut it to ``crop`` pixels (None: no crop)."""
        rng = np.random.default_rng([self.seed, epoch, index])
        size = crop if crop is not None else image.shape[-1]
        shift = self.max_shift
        dy, dx = rng.integers(-shift, shift + 1, size=2) if shift else (0, 0)
        height, width = image.shape[-2:]
        top, left = (height - size) // 2 + dy, (width - size) // 2 + dx
        if top < 0 or left < 0 or top + size > height or left + size > width:
            pad = max(-top, -left, top + size - height, left + size - width, 0)
            image = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
            top, left = top + pad, left + pad
        out = image[:, top : top + size, left : left + size]
        if self.rotations:
            out = np.rot90(out, k=int(rng.integers(4)), axes=(1, 2))
        if self.flips and rng.integers(2):
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out)


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
    images : zarr.Array, shape (N, n_bands, H, W)
        The pixels in nanomaggies, read lazily.
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
        self.images = zarr.open_array(self.path / "images", mode="r")
        if self.complete:
            self.labels = zarr.open_array(self.path / "labels", mode="r")[:]
            params = _read_parquet_table(self.path / "params.parquet")
        else:
            records = _read_records(self.path)
            self.labels = np.full(meta["n_images"], -1, dtype=np.int8)
            for r in records:
                self.labels[r["index"]] = r["label"]
            params = _records_table(records)
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


class TorchLensDataset:
    """Map-style dataset for ``torch.utils.data.DataLoader``.

    Item ``k`` is ``(image, label)``: a float32 (band, y, x) numpy array in nanomaggies
    (centre-cropped to ``crop`` pixels, augmented when an :class:`Augmentation` is given)
    and an int label; the loader's default collate turns them into tensors.  The network's
    input transform (for example an asinh stretch) is applied later, on the device.
    Call :meth:`set_epoch` before each epoch so that augmentations differ between epochs.
    """

    def __init__(self, dataset: LensDataset, *, crop=None, augmentation=None):
        self.dataset = dataset
        self.crop = crop
        if crop is not None:
            center_crop(np.empty((1, *dataset.image_shape[1:]), dtype=np.float32), crop)
        self.augmentation = augmentation
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, k: int):
        image, label = self.dataset[k]
        if self.augmentation is not None:
            image = self.augmentation.apply(
                image, self.crop, self.epoch, int(self.dataset.indices[k])
            )
        elif self.crop is not None:
            image = np.ascontiguousarray(center_crop(image, self.crop))
        return image, label


def write_toy_dataset(
    path,
    n_images: int,
    *,
    size: int = 64,
    arc_snr: float = 2.0,
    seed: int = 0,
    pixel_scale: float = 0.262,
) -> LensDataset:
    """Write a small synthetic dataset: faint arcs (label 1) or none (label 0) on a toy field.

    Not a simulation of real lenses (that is :mod:`clusterlens.mock`): a quick, seeded
    stand-in to check that a network and a training setup learn at all.  Every image has
    Gaussian sky noise of about the Legacy Surveys' per-pixel level in g, r, z
    (0.006, 0.011, 0.025 nanomaggies), a bright central "BCG" and a few member "galaxies";
    half (even indices) also get a blue arc segment of a circle around the centre (radius
    0.2-0.4 of the image side, 40-120 degrees long, 1.2 pixels wide) whose peak is
    ``arc_snr`` times the noise in each band.

    Parameters
    ----------
    path : str or Path
        Dataset directory (overwritten).
    n_images : int
        Number of images; labels alternate 1, 0, 1, 0...
    size : int
        Image side in pixels.
    arc_snr : float
        Peak arc brightness in units of the per-pixel noise.
    seed : int
        Seed of all draws.

    Returns
    -------
    LensDataset
    """
    arc_snr = check_scalar(arc_snr, "arc_snr", "write_toy_dataset", low=0)
    noise = np.array([0.006, 0.011, 0.025], dtype=np.float64)[:, None, None]
    writer = DatasetWriter(
        path,
        n_images,
        (3, size, size),
        pixel_scale=pixel_scale,
        creator="clusterlens.datasets.write_toy_dataset",
        overwrite=True,
    )
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    radius, angle = np.hypot(xx, yy), np.degrees(np.arctan2(yy, xx))
    sed = np.array([1.0, 0.8, 0.6])[:, None, None]  # red galaxies: brighter in z than g
    for index in range(n_images):
        rng = np.random.default_rng([seed, index])
        image = rng.normal(size=(3, size, size)) * noise
        for k in range(1 + rng.poisson(4)):
            cx, cy = (0.0, 0.0) if k == 0 else rng.uniform(-0.45, 0.45, 2) * size
            flux, width = rng.uniform(0.3, 3.0) * (3 if k == 0 else 1), rng.uniform(1.0, 2.5)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2))
            image += flux * blob / (2 * np.pi * width**2) / sed[::-1] * 0.6
        label = int(index % 2 == 0)
        params = {"arc_radius_pix": 0.0, "arc_length_deg": 0.0}
        if label:
            r0 = rng.uniform(0.2, 0.4) * size
            centre, length = rng.uniform(-180, 180), rng.uniform(40, 120)
            offset = (angle - centre + 180) % 360 - 180
            arc = np.exp(-((radius - r0) ** 2) / (2 * 1.2**2)) * (np.abs(offset) < length / 2)
            image += arc_snr * noise * arc
            params = {"arc_radius_pix": float(r0), "arc_length_deg": float(length)}
        writer.write(index, image, label, params)
    return writer.finalize()
