"""The dataset directory's shared pieces: names, metadata, per-image records, errors.

Private: :mod:`clusterlens.datasets.writer` and :mod:`clusterlens.datasets.reader` both use
these; users import from :mod:`clusterlens.datasets`.
"""

from __future__ import annotations

import json
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from clusterlens import __version__
from clusterlens._validation import check_int
from clusterlens.errors import ClusterlensError, ParameterError

FORMAT_NAME = "clusterlens-dataset"
# 1: float32 images; 2: images may be noise-quantised integers (``image_encoding``)
FORMAT_VERSION = 2
_RESERVED_PARAMS = ("index", "label")
_COMPLETE = "complete.json"
_RECORDS = "_records"


class DatasetError(ClusterlensError):
    """A dataset on disk is missing, incomplete, corrupt or of another shape."""


def _record_path(root: Path, index: int) -> Path:
    # Subdirectories of 1000 keep directory listings short for 10^5 - 10^6 images.
    return root / _RECORDS / f"{index // 1000:05d}" / f"{index:09d}.json"


def _check_index(index, n_images: int, owner: str) -> int:
    check_int(index, "index", owner, low=0, high=n_images - 1)
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
