"""Reading what is scored: catalog objects from a cutout source, images of a dataset, their
checks, the reader threads that load batches ahead of the network, and int8 calibration
images (see :mod:`clusterlens.nets.scoring`)."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np

from clusterlens.datasets import LensDataset, center_crop
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.nets._scoring_config import ScoringConfig, ScoringError
from clusterlens.survey.catalogs import find_column

__all__ = ["calibration_images", "read_batches", "scoring_objects"]


class _CatalogObjects:
    """Objects of a catalog whose cutouts come from a CutoutSource (pickles to workers)."""

    kind = "catalog"

    def __init__(self, source, ids, ra, dec, size, bands):
        self.source, self.ids, self.ra, self.dec = source, ids, ra, dec
        self.size, self.bands = size, bands

    def __len__(self):
        return len(self.ids)

    def describe(self, row: int) -> str:
        name = self.ids[row].item() if isinstance(self.ids[row], np.generic) else self.ids[row]
        return f"object {name} (RA={self.ra[row]:.6f}, Dec={self.dec[row]:.6f})"

    def load(self, row: int) -> np.ndarray:
        image, _ = self.source.get(
            float(self.ra[row]),
            float(self.dec[row]),
            self.size,
            self.bands,
            cluster_id=self.ids[row].item()
            if isinstance(self.ids[row], np.generic)
            else self.ids[row],
        )
        return np.asarray(image, dtype=np.float32)


class _DatasetObjects:
    """Images of a LensDataset, cut to ``size`` about their centre."""

    kind = "dataset"

    def __init__(self, path, indices, ra, dec, size, allow_incomplete):
        self.path, self.ids, self.ra, self.dec = Path(path), indices, ra, dec
        self.size, self.allow_incomplete = size, allow_incomplete
        self._images = None

    def __getstate__(self):
        return {**self.__dict__, "_images": None}

    def __len__(self):
        return len(self.ids)

    def describe(self, row: int) -> str:
        return f"image {int(self.ids[row])} of the dataset {str(self.path)!r}"

    def load(self, row: int) -> np.ndarray:
        if self._images is None:
            self._images = LensDataset(self.path, allow_incomplete=self.allow_incomplete).images
        try:
            image = np.asarray(self._images[int(self.ids[row])], dtype=np.float32)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # zarr/numcodecs name no image in their decode errors
            raise ScoringError(
                f"{self.describe(row).capitalize()} cannot be read (a corrupt chunk?): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        return np.ascontiguousarray(center_crop(image, self.size))


def _check_image(image: np.ndarray, objects, row: int, shape: tuple) -> None:
    if image.shape != shape:
        raise ScoringError(
            f"The cutout of {objects.describe(row)} has shape {image.shape}; the network "
            f"needs {shape} (band, y, x). Give the source the right size or bands."
        )
    bad = ~np.isfinite(image)
    if bad.any():
        b, y, x = (int(v) for v in np.argwhere(bad)[0])
        raise ScoringError(
            f"The cutout of {objects.describe(row)} has {int(bad.sum())} NaN/inf pixel(s), "
            f"the first in plane {b} at (y, x) = ({y}, {x}). Repair them (e.g. "
            "FitsDirectoryCutouts(nan_policy='fill')) or drop the object."
        )


def scoring_objects(source, catalog, config, id_column=None, ra_column=None, dec_column=None):
    """What :meth:`Scorer.score` scores: the objects of a cutout source and catalog, or the
    images of a dataset (a folder path is read as one or the other)."""
    from clusterlens.survey.cutouts import CutoutSource, FitsDirectoryCutouts

    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if (path / "zarr.json").is_file():
            source = LensDataset(path)
        elif path.is_dir():
            source = FitsDirectoryCutouts(path)
        else:
            raise ParameterError(
                "The 'source' parameter of Scorer.score must be a cutout source, a "
                f"dataset or an existing folder. Got {str(source)!r} instead."
            )
    size = config.size
    if isinstance(source, LensDataset):
        if source.image_shape[-1] < size or source.image_shape[-2] < size:
            raise ScoringError(
                f"The dataset {str(source.path)!r} holds {source.image_shape[-2]} x "
                f"{source.image_shape[-1]} images, smaller than the {size} x {size} "
                "the network needs."
            )
        if source.image_shape[0] != len(config.bands):
            raise ScoringError(
                f"The dataset {str(source.path)!r} has {source.image_shape[0]} bands; the "
                f"network takes {len(config.bands)}."
            )
        params = source.params
        nan = np.full(len(source), np.nan)
        ra = np.asarray(params["ra"], float) if "ra" in params.colnames else nan
        dec = np.asarray(params["dec"], float) if "dec" in params.colnames else nan
        return _DatasetObjects(source.path, source.indices, ra, dec, size, not source.complete)
    if not isinstance(source, CutoutSource):
        raise ParameterError(
            "The 'source' parameter of Scorer.score must be a CutoutSource, a LensDataset "
            f"or a folder. Got {type(source).__name__} instead."
        )
    if catalog is None:
        raise ParameterError(
            "Scoring a cutout source needs a 'catalog' (a table with id, ra and dec)."
        )
    id_column = find_column(catalog, id_column, "id", "the id_column parameter")
    ra_column = find_column(catalog, ra_column, "ra", "the ra_column parameter")
    dec_column = find_column(catalog, dec_column, "dec", "the dec_column parameter")
    ids = np.asarray(catalog[id_column])
    if len(set(ids.tolist())) != len(ids):
        raise ParameterError(f"The catalog's {id_column!r} column has duplicate values.")
    return _CatalogObjects(
        source,
        ids,
        np.asarray(catalog[ra_column], dtype=float),
        np.asarray(catalog[dec_column], dtype=float),
        size,
        config.bands,
    )


def read_batches(objects, rows, config: ScoringConfig, shape, pool, preprocess=None):
    """Yield (rows, images or None, errors) batches, reading ``read_ahead`` batches ahead;
    ``preprocess`` (if given) is applied to each checked image in the reader thread."""

    def load(row):
        try:
            image = objects.load(row)
            _check_image(image, objects, row, shape)
            return (image if preprocess is None else preprocess(image)), None
        except ClusterlensError as exc:
            if config.on_error == "raise":
                if isinstance(exc, ScoringError):
                    raise
                raise ScoringError(f"Cannot score {objects.describe(row)}: {exc}") from exc
            return None, f"{type(exc).__name__}: {exc}"

    pending = collections.deque()
    todo = iter(rows)
    limit = config.batch_size * config.read_ahead

    def fill():
        while len(pending) < limit:
            row = next(todo, None)
            if row is None:
                return
            pending.append((row, pool.submit(load, row)))

    fill()
    while pending:
        batch = [pending.popleft() for _ in range(min(config.batch_size, len(pending)))]
        fill()
        yield [(row, *future.result()) for row, future in batch]


def calibration_images(config: ScoringConfig) -> np.ndarray:
    """The first ``config.calibration_images`` images of the ``config.calibration`` dataset,
    cut to ``config.size``: float32 (n, band, y, x) fluxes for int8 calibration."""
    try:
        data = LensDataset(config.calibration)
    except (OSError, ClusterlensError) as exc:
        raise ParameterError(
            "The 'calibration' parameter of ScoringConfig must be a dataset folder; "
            f"{config.calibration!r} cannot be read as one ({exc})."
        ) from exc
    shape = (len(config.bands), config.size, config.size)
    if data.image_shape[0] != shape[0] or min(data.image_shape[1:]) < config.size:
        raise ParameterError(
            f"The calibration dataset {config.calibration!r} holds {data.image_shape} images; "
            f"int8 calibration needs {shape[0]} bands of at least {config.size} pixels."
        )
    indices = data.indices[: config.calibration_images]
    images = np.stack(
        [center_crop(np.asarray(data.images[int(i)], np.float32), config.size) for i in indices]
    )
    if not np.isfinite(images).all():
        raise ParameterError(
            f"The calibration dataset {config.calibration!r} has NaN/inf pixels among its "
            f"first {len(indices)} images."
        )
    return np.ascontiguousarray(images)
