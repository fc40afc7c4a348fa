"""How a dataset stores its pixels: float32 as given, or integers of a noise-aware step.

``"quantized"`` (the default of new datasets, format version 2)
    Per image and band ``b`` the pixel noise ``sigma_b`` [nanomaggies] is measured on the
    image itself (:func:`noise_sigma`), and every pixel ``x`` is stored as the integer
    ``n = round(x / s_b) - n_min >= 0`` of the step ``s_b = f sigma_b`` (``f`` is the dataset's
    ``quantization_step``, 1/8 by default), compressed with Blosc (Zstandard, level 2, byte
    shuffle).  It reads back as ``x' = offset_b + s_b n`` with ``offset_b = s_b n_min``; the
    step and offset of every image are stored beside it (``image_step``, ``image_offset``).

    Because the noise spans many steps, the rounding error ``x' - x`` is uniform in
    ``[-s_b/2, s_b/2]`` (plus float32's own rounding, 2**-24 of the value, on bright
    pixels) and independent of the signal: RMS ``s_b / sqrt(12)`` = 0.036
    ``sigma_b`` for ``f = 1/8``, which adds 0.13% to the noise variance (0.065% to the noise
    sigma) and does not bias means (checked on mock images in ``tests/test_datasets.py``).
    Storage drops from 4 bytes to about 0.7 byte per pixel (0.10 MB per 3 x 223 x 223 image,
    against 0.55 MB as zstd-compressed float32; ``benchmarks/bench_storage.py``).

``"float32"`` (format version 1, every dataset written before version 2)
    The pixels as given, one zstd-compressed (or, with ``compressed=False``, raw) float32
    chunk per image: lossless, about 5x larger.

A band whose noise cannot be measured (constant, or fewer than 32 non-zero neighbour
differences) is stored with the step ``max|x| 2**-24``, i.e. float32's own precision at its
brightest pixel.  Images without noise (noise-free simulations) are better kept as
``"float32"``: quantisation measures its step against the noise an image has.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from clusterlens.datasets._format import DatasetError
from clusterlens.errors import ParameterError

__all__ = ["ENCODINGS", "DatasetImages", "noise_sigma", "quantize", "dequantize"]

ENCODINGS = ("quantized", "float32")
DEFAULT_QUANTIZATION_STEP = 0.125  # of the noise sigma: RMS error 0.036 sigma
NOISE_ESTIMATOR = "1.4826 median |x[y, i + 1] - x[y, i]| / sqrt(2) over non-zero differences"
# Stored integers are >= 0; -1, the fill value, marks an image whose chunk is missing.
_MISSING = -1
_MAX_LEVELS = 2**31 - 64  # int32 range, with room for the rounding at both ends
_MIN_DIFFERENCES = 32
_MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a Gaussian -> its sigma
# The per-image, per-band arrays of a quantised dataset and their keys in the records.
_SCALING_ARRAYS = (
    ("image_step", "float64"),
    ("image_offset", "float64"),
    ("noise_sigma", "float64"),
)
_RECORD_KEY = {"image_step": "step", "image_offset": "offset", "noise_sigma": "noise_sigma"}


def image_encoding(meta: dict) -> dict:
    """The ``image_encoding`` entry of a dataset's metadata; format version 1 datasets,
    which have none, store float32."""
    encoding = meta.get("image_encoding") or {"name": "float32", "compressed": True}
    if encoding.get("name") not in ENCODINGS:
        raise DatasetError(
            f"The dataset's images are stored as {encoding.get('name')!r}; this clusterlens "
            f"reads {ENCODINGS}. Upgrade clusterlens."
        )
    return encoding


def quantized_codecs():
    """The Zarr codecs of quantised image chunks: Blosc-Zstandard with byte shuffle.

    Blosc level 2 is both the smallest and the fastest to write of levels 1-4 on mock
    cutouts (0.1005 MB and 0.8 ms per 3 x 223^2 image, against 0.1013 MB and 2.2 ms at 3).

    The shuffle puts the high bytes of all pixels together; for noise-dominated cutouts they
    are nearly constant and cost almost nothing, which is why int32 takes no more room than
    int16 would (and never overflows on a bright star).
    """
    from zarr.codecs import BloscCodec

    return [BloscCodec(cname="zstd", clevel=2, shuffle="shuffle", typesize=4)]


def noise_sigma(image) -> np.ndarray:
    """Per-band pixel noise [image units] of a (band, y, x) image, in ~1 ms per 223^2 band.

    ``1.4826 median |d| / sqrt(2)`` of the horizontal neighbour differences ``d`` that are
    not exactly zero.  For white noise this is its sigma; smooth sources change ``d`` little,
    and the median ignores the few pixels where they do (bright cores, stars); noise
    correlated between neighbouring pixels (resampled coadds) gives a smaller value, hence a
    finer, safer, quantisation step.  Exact zeros (masked or constant regions) are skipped.

    Returns
    -------
    numpy.ndarray of float64, shape (band,)
        NaN for a band with fewer than 32 non-zero differences (no noise to measure).
    """
    image = np.asarray(image, dtype=np.float32)
    diff = np.abs(np.diff(image, axis=2))
    out = np.full(image.shape[0], np.nan)
    for b in range(image.shape[0]):
        values = diff[b][diff[b] > 0]
        if values.size >= _MIN_DIFFERENCES:
            middle = values.size // 2  # the upper median: one partition instead of a sort
            out[b] = _MAD_TO_SIGMA * float(np.partition(values, middle)[middle]) / np.sqrt(2.0)
    return out


def quantize(image, step_in_sigma: float = DEFAULT_QUANTIZATION_STEP):
    """Integers of step ``step_in_sigma`` x each band's measured noise (see the module doc).

    Parameters
    ----------
    image : numpy.ndarray, shape (band, y, x)
        Finite pixel values [nanomaggies].
    step_in_sigma : float
        The step in units of the band's noise sigma.

    Returns
    -------
    stored : numpy.ndarray of int32, shape (band, y, x)
        ``round(x / step) - n_min``, all >= 0.
    step, offset : numpy.ndarray of float64, shape (band,)
        The image reads back as ``offset + step * stored`` [nanomaggies].
    sigma : numpy.ndarray of float64, shape (band,)
        The measured noise [nanomaggies] (NaN where none could be measured).
    """
    image = np.asarray(image, dtype=np.float32)
    sigma = noise_sigma(image)
    lo = image.min(axis=(1, 2)).astype(np.float64)
    hi = image.max(axis=(1, 2)).astype(np.float64)
    # no noise to measure against: float32's precision at the band's brightest pixel
    fallback = np.maximum(np.abs(lo), np.abs(hi)) * 2.0**-24
    step = np.where(sigma > 0, step_in_sigma * np.nan_to_num(sigma), fallback)
    step[step == 0] = 1.0  # an all-zero band
    # a dynamic range beyond the int32 levels (never seen in survey cutouts) coarsens the
    # step of that band rather than clipping it; the stored step says so
    step = np.maximum(step, (hi - lo) / _MAX_LEVELS)
    levels = image / step[:, None, None]  # float64: exact rounding up to 2**52 levels
    np.rint(levels, out=levels)
    n_min = levels.min(axis=(1, 2))
    levels -= n_min[:, None, None]
    return levels.astype(np.int32), step, n_min * step, sigma


def dequantize(stored, step, offset) -> np.ndarray:
    """float32 pixels ``offset + step * stored`` [nanomaggies], computed in float64.

    ``step`` and ``offset`` must broadcast against ``stored`` (for one image shaped
    (band, y, x): arrays shaped (band, 1, 1)).  Pixels of a missing chunk (the fill value -1)
    and of images without a step (NaN: not written yet) read as NaN.
    """
    stored = np.asarray(stored)
    pixels = np.multiply(stored, np.asarray(step, dtype=np.float64))
    pixels += np.asarray(offset, dtype=np.float64)
    out = pixels.astype(np.float32)
    if stored.size and stored.min() < 0:
        out[stored == _MISSING] = np.nan
    return out


class DatasetImages:
    """The images of a dataset as a read-only array of float32 pixels [nanomaggies].

    Indexing reads from disk and decodes: ``images[i]`` is image ``i`` shaped
    (band, y, x); ``images[a:b]``, ``images[[i, j, k]]`` and ``images[i, 0, 10:20]`` work
    like numpy's orthogonal indexing (integers, slices, integer or boolean arrays; no
    ``...`` or ``None``); :meth:`get_orthogonal_selection` is the same as Zarr's.

    Attributes
    ----------
    encoding : str
        ``"quantized"`` or ``"float32"`` (see :mod:`clusterlens.datasets.encoding`).
    raw : zarr.Array
        The stored array (int32 for quantised datasets).
    step, offset : numpy.ndarray of float64, shape (N, band), or None
        Pixel = ``offset + step * stored`` [nanomaggies] (quantised datasets; NaN for
        images not yet written).  The rounding error is at most ``step / 2`` (plus
        float32's rounding of the value read back).
    noise_sigma : numpy.ndarray of float64, shape (N, band), or None
        The per-band noise measured on each image when it was written [nanomaggies].
    """

    def __init__(
        self, raw, encoding: str, *, step=None, offset=None, noise_sigma=None, chunks=None
    ):
        self.raw = raw
        self.encoding = encoding
        self.step, self.offset, self.noise_sigma = step, offset, noise_sigma
        # a reader of whole-image chunk files (datasets._chunks), or None: through Zarr
        self._chunk_files = chunks

    @property
    def shape(self) -> tuple:
        return tuple(self.raw.shape)

    @property
    def ndim(self) -> int:
        return len(self.raw.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def chunks(self) -> tuple:
        return tuple(self.raw.chunks)

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def __getitem__(self, key) -> np.ndarray:
        selection = key if isinstance(key, tuple) else (key,)
        if len(selection) > self.ndim or any(k is Ellipsis or k is None for k in selection):
            raise ParameterError(
                f"The index of DatasetImages must be up to {self.ndim} indices (image, band, "
                f"y, x), each an integer, a slice or an array of them. Got {key!r} instead."
            )
        selection = tuple(
            k if isinstance(k, Integral | slice) else np.asarray(k) for k in selection
        )
        stored = None
        if self._chunk_files is not None and isinstance(key, Integral):
            index = int(key) + (len(self) if key < 0 else 0)
            stored = self._chunk_files.read(index)  # one whole image: its chunk file
        if stored is None:
            stored = np.asarray(self.raw.get_orthogonal_selection(selection))
        if self.encoding == "float32":
            return stored if stored.flags.writeable else stored.copy()
        first = selection[0]
        bands = selection[1] if len(selection) > 1 else slice(None)
        step = self.step[first][..., bands]
        offset = self.offset[first][..., bands]
        # the selected (image, band) axes lead; the y, x axes left in the result follow
        shape = np.shape(step) + (1,) * (stored.ndim - np.ndim(step))
        return dequantize(stored, np.reshape(step, shape), np.reshape(offset, shape))

    def get_orthogonal_selection(self, selection) -> np.ndarray:
        """Zarr's orthogonal selection, decoded to float32 pixels."""
        return self[selection]

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"DatasetImages(shape={self.shape}, encoding={self.encoding!r})"
