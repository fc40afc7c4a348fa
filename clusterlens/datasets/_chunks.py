"""Whole-image chunks read straight from their files (private).

clusterlens datasets store one chunk per image.  Zarr's array indexing spends ~0.4 ms per
call on its general machinery (selection planning, the asynchronous codec pipeline) beside
the ~0.3 ms that reading and decoding the chunk take, which made reading a third of a CPU
training step.  For the layouts clusterlens writes (Zarr v3 on a local disk, regular chunks
of one whole image, the default chunk keys, the ``bytes`` codec followed by Blosc, Zstandard
or nothing) :class:`WholeImageChunks` reads a chunk file and decodes it with the same
numcodecs compressors Zarr uses.  Anything else (other codecs, sharding, remote stores)
returns None from :meth:`WholeImageChunks.open` and is read through Zarr as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__: list[str] = []

_DTYPES = {"int32": "<i4", "float32": "<f4"}


class WholeImageChunks:
    """Image ``i`` of a one-image-per-chunk Zarr v3 array, decoded from its chunk file."""

    def __init__(self, root: Path, dtype: str, image_shape: tuple, n_images: int, decode):
        self._root = root
        self._dtype = np.dtype(dtype)
        self._shape = tuple(image_shape)
        self._n_images = int(n_images)
        self._decode = decode
        self._suffix = "/".join("0" for _ in image_shape)

    @classmethod
    def open(cls, array_dir) -> WholeImageChunks | None:
        """The reader of the array in ``array_dir``, or None if its layout is not one of these."""
        try:
            meta = json.loads((Path(array_dir) / "zarr.json").read_text())
        except (OSError, ValueError):
            return None
        decode = _decoder(meta)
        if decode is None:
            return None
        shape = meta["shape"]
        return cls(Path(array_dir) / "c", _DTYPES[meta["data_type"]], shape[1:], shape[0], decode)

    def read(self, index: int) -> np.ndarray | None:
        """The stored values of image ``index``, or None (a chunk not written, or any
        surprise: the caller then reads it through Zarr, which knows the fill value)."""
        if not 0 <= index < self._n_images:
            return None
        try:
            data = (self._root / f"{index}/{self._suffix}").read_bytes()
            values = np.frombuffer(self._decode(data), dtype=self._dtype)
        except (OSError, ValueError, RuntimeError):
            return None
        if values.size != int(np.prod(self._shape)):
            return None
        return values.reshape(self._shape)


def _decoder(meta: dict):
    """The bytes -> bytes decoder of a supported array layout, else None."""
    try:
        shape = list(meta["shape"])
        grid = meta["chunk_grid"]
        keys = meta["chunk_key_encoding"]
        codecs = list(meta["codecs"])
        supported = (
            meta.get("zarr_format") == 3
            and meta.get("node_type") == "array"
            and meta.get("data_type") in _DTYPES
            and not meta.get("storage_transformers")
            and grid.get("name") == "regular"
            and list(grid["configuration"]["chunk_shape"]) == [1, *shape[1:]]
            and keys.get("name") == "default"
            and keys.get("configuration", {}).get("separator", "/") == "/"
            and codecs
            and codecs[0].get("name") == "bytes"
            and codecs[0].get("configuration", {}).get("endian", "little") == "little"
            and len(codecs) <= 2
        )
    except (KeyError, TypeError, AttributeError):
        return None
    if not supported:
        return None
    if len(codecs) == 1:
        return bytes
    name = codecs[1].get("name")
    if name == "blosc":
        from numcodecs import blosc

        return blosc.decompress
    if name == "zstd":
        from numcodecs import Zstd

        return Zstd().decode
    return None
