"""Cutout sources: the interface, validation of what they return, and cutouts on disk.

A :class:`CutoutSource` answers ``get(ra, dec, size, bands) -> (image, header)`` with a
float32 image shaped ``(band, y, x)`` in nanomaggies (AB zero point 22.5), north up and east
left in FITS order (row 0 is the southern edge; see :mod:`clusterlens.survey.members`), and
an :class:`astropy.io.fits.Header` carrying the WCS, ``BANDS`` and the repair flags below.
Implementations: :class:`~clusterlens.survey.LegacySurveyCutouts` (the Legacy Surveys
viewer), :class:`FitsDirectoryCutouts` (files already on disk) and, later, the synthetic
fields of ``clusterlens.fields`` (which implement ``get`` by rendering a field whose seed can
be derived from ``cluster_id``, the optional keyword every source accepts).

Validation (:func:`validate_cutout`) never lets a broken cutout look like a good one:

* wrong number of planes, wrong size, a band label that disagrees (``BANDn`` keywords):
  :class:`CutoutError`;
* a band with no finite pixel, or one that is exactly zero everywhere (no coverage):
  :class:`CutoutError`;
* the fraction of pixels that are exactly zero (the service's value where it has no data,
  e.g. past a footprint edge) is recorded as ``CLZEROFR`` for the caller to cut on;
* some NaN/inf pixels: with ``nan_policy="fill"`` (default) and no more than
  ``max_bad_fraction`` of them, they are set to 0 (the sky level of these background-
  subtracted images) and the header records ``CLNBAD`` (how many) and ``CLBADFR``
  (fraction); the boolean mask of repaired pixels is returned by
  :func:`validate_cutout` and stored as the ``BADPIX`` extension by
  :func:`write_cutout_fits`. With ``nan_policy="raise"`` any bad pixel raises.
"""

from __future__ import annotations

import abc
import io
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from clusterlens._io import atomic_path
from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ClusterlensError, ParameterError

__all__ = [
    "CutoutError",
    "IncompleteFitsError",
    "CutoutSource",
    "FitsDirectoryCutouts",
    "check_bands",
    "check_size",
    "validate_cutout",
    "parse_fits_bytes",
    "read_cutout_fits",
    "write_cutout_fits",
    "PIXEL_SCALE",
]

#: Legacy Surveys pixel scale [arcsec / pixel].
PIXEL_SCALE = 0.262

_NAN_POLICIES = ("fill", "raise")


class CutoutError(ClusterlensError):
    """A cutout could not be obtained, or what came back is not a usable image."""


class IncompleteFitsError(CutoutError):
    """FITS bytes that end early or do not parse: a transfer cut short, worth a retry."""


def check_bands(bands, owner: str) -> tuple[str, ...]:
    """Bands as a tuple of one-letter names: ``"grz"`` or ``("g", "r", "z")``."""
    if isinstance(bands, str):
        bands = tuple(bands)
    try:
        bands = tuple(bands)
    except TypeError:
        bands = None
    if (
        not bands
        or not all(isinstance(b, str) and len(b) == 1 and b.isalpha() for b in bands)
        or len(set(bands)) != len(bands)
    ):
        raise ParameterError(
            f"The 'bands' parameter of {owner} must be distinct one-letter band names such as "
            f"'grz' or ('g', 'r', 'z'). Got {bands!r} instead."
        )
    return bands


def check_size(size, owner: str) -> int:
    """Cutout side in pixels: an int in [1, 10000]."""
    return check_int(size, "size", owner, low=1, high=10000)


def _header_bands(header: fits.Header, n: int) -> list[str | None]:
    return [str(header[f"BAND{i}"]).strip() if f"BAND{i}" in header else None for i in range(n)]


def validate_cutout(
    image,
    header: fits.Header,
    *,
    size: int,
    bands,
    nan_policy: str = "fill",
    max_bad_fraction: float = 0.25,
    where: str = "cutout",
) -> tuple[np.ndarray, fits.Header, np.ndarray]:
    """Check a cutout and repair what can be repaired (see the module docstring).

    Parameters
    ----------
    image : array_like
        ``(band, y, x)`` pixels [nanomaggies]; a 2-d image counts as one band.
    header : Header
        Its FITS header; ``BANDn`` keywords, when present, must match ``bands``.
    size : int
        Expected side [pixels].
    bands : str or sequence of str
        Expected bands, in order.
    nan_policy : {"fill", "raise"}
    max_bad_fraction : float
        Largest fraction of non-finite pixels (over all bands) that ``"fill"`` repairs.
    where : str
        What the cutout is (a URL, a file), for the messages.

    Returns
    -------
    image : ndarray
        float32 ``(band, size, size)``, C-contiguous.
    header : Header
        A copy with ``BANDS``, ``CLNBAD`` and ``CLBADFR`` set.
    bad : ndarray of bool
        The repaired pixels, same shape as ``image``.
    """
    bands = check_bands(bands, "validate_cutout")
    size = check_size(size, "validate_cutout")
    if nan_policy not in _NAN_POLICIES:
        raise ParameterError(
            f"The 'nan_policy' parameter of validate_cutout must be one of {_NAN_POLICIES}. "
            f"Got {nan_policy!r} instead."
        )
    max_bad_fraction = check_scalar(
        max_bad_fraction, "max_bad_fraction", "validate_cutout", low=0, high=1
    )
    if image is None:
        raise CutoutError(f"The {where} holds no image data.")
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise CutoutError(
            f"The {where} has shape {data.shape}; expected (band, y, x) = "
            f"({len(bands)}, {size}, {size})."
        )
    if data.shape[0] != len(bands):
        raise CutoutError(
            f"The {where} has {data.shape[0]} band plane(s); expected {len(bands)} "
            f"({''.join(bands)}). A band is missing."
        )
    if data.shape[1:] != (size, size):
        raise CutoutError(
            f"The {where} is {data.shape[2]} x {data.shape[1]} pixels; expected "
            f"{size} x {size} (the server may cap large sizes)."
        )
    declared = str(header.get("BANDS", "")).strip()
    if len(declared) == len(bands) and declared != "".join(bands):
        raise CutoutError(
            f"The {where} holds bands {declared!r} (BANDS); expected {''.join(bands)!r}."
        )
    labels = _header_bands(header, len(bands))
    for i, (lab, want) in enumerate(zip(labels, bands, strict=True)):
        if lab is not None and lab != want:
            raise CutoutError(
                f"Plane {i} of the {where} is band {lab!r} (BAND{i}); expected {want!r}."
            )
    finite = np.isfinite(data)
    for i, b in enumerate(bands):
        if not finite[i].any():
            raise CutoutError(f"Band {b} of the {where} has no finite pixel (all NaN).")
        if not np.any(data[i][finite[i]]):
            raise CutoutError(
                f"Band {b} of the {where} is zero everywhere: no data there (outside the "
                "survey footprint or missing band)."
            )
    bad = ~finite
    n_bad = int(bad.sum())
    frac = n_bad / bad.size
    if n_bad and nan_policy == "raise":
        raise CutoutError(f"The {where} has {n_bad} NaN/inf pixel(s) ({frac:.2%}).")
    if frac > max_bad_fraction:
        raise CutoutError(
            f"The {where} has {frac:.2%} NaN/inf pixels, more than max_bad_fraction="
            f"{max_bad_fraction:g} allows to repair."
        )
    data = np.ascontiguousarray(data)
    zero_frac = float(np.mean(data == 0.0))  # before NaNs become zeros
    if n_bad:
        data = data.copy()
        data[bad] = 0.0
    header = header.copy()
    header["BANDS"] = ("".join(bands), "band of each plane, in order")
    header["CLNBAD"] = (n_bad, "clusterlens: NaN/inf pixels set to 0")
    header["CLBADFR"] = (frac, "clusterlens: fraction of pixels repaired")
    header["CLZEROFR"] = (
        zero_frac,
        "fraction of pixels exactly 0 (no data?)",
    )
    return data, header, bad


def parse_fits_bytes(raw: bytes, *, where: str) -> tuple[np.ndarray, fits.Header]:
    """Parse a whole FITS file held in memory; the first HDU with data is the image.

    Raises :class:`CutoutError` for HTML or other non-FITS content and for truncated files
    (astropy's truncation warnings are turned into errors).
    """
    head = raw[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        raise CutoutError(f"The {where} is an HTML/XML page, not FITS: {_html_text(raw)!r}")
    if not raw.startswith(b"SIMPLE  ="):
        raise CutoutError(f"The {where} is not a FITS file (starts with {raw[:20]!r}).")
    if len(raw) % 2880:
        raise IncompleteFitsError(
            f"The {where} is truncated: {len(raw)} bytes is not a whole number of FITS blocks."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(io.BytesIO(raw), memmap=False) as hdul:
                for hdu in hdul:
                    if hdu.data is not None:
                        return np.array(hdu.data, dtype=np.float32), hdu.header.copy()
    except Exception as exc:
        raise IncompleteFitsError(f"The {where} is not a readable FITS file: {exc}") from exc
    raise CutoutError(f"The {where} is a FITS file without image data.")


def _html_text(raw: bytes) -> str:
    import re

    text = raw[:4000].decode("utf-8", "replace")
    m = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
    body = m.group(1) if m else re.sub(r"<[^>]+>", " ", text)
    return " ".join(body.split())[:200]


def read_cutout_fits(path) -> tuple[np.ndarray, fits.Header]:
    """Read a cutout file written by :func:`write_cutout_fits` (or any FITS image)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CutoutError(f"Cannot read cutout file {str(path)!r}: {exc}") from exc
    return parse_fits_bytes(raw, where=f"file {str(path)!r}")


def _complete_header(header, shape, pixel_scale: float) -> fits.Header:
    """``header`` with what a FITS reader needs to place and scale the pixels: ``BUNIT``
    and, when the centre is known (``CRVAL1/2`` or ``RA/DEC``), a full TAN WCS (north up,
    east left, the centre at the middle of the image). Keywords already there are kept."""
    h = fits.Header(header) if header is not None else fits.Header()
    h.setdefault("BUNIT", ("nanomaggy", "pixel unit (AB zero point 22.5)"))
    ra = h.get("CRVAL1", h.get("RA"))
    dec = h.get("CRVAL2", h.get("DEC"))
    if ra is None or dec is None:
        return h
    ny, nx = shape[-2], shape[-1]
    scale = float(h.get("PIXSCALE", pixel_scale)) / 3600.0
    for key, value, comment in (
        ("CTYPE1", "RA---TAN", "gnomonic projection"),
        ("CTYPE2", "DEC--TAN", "gnomonic projection"),
        ("CUNIT1", "deg", ""),
        ("CUNIT2", "deg", ""),
        ("CRVAL1", float(ra), "RA at the reference pixel [deg]"),
        ("CRVAL2", float(dec), "Dec at the reference pixel [deg]"),
        ("CRPIX1", (nx + 1) / 2.0, "reference pixel: the image centre"),
        ("CRPIX2", (ny + 1) / 2.0, "reference pixel: the image centre"),
    ):
        h.setdefault(key, (value, comment))
    if not any(k in h for k in ("CD1_1", "CDELT1", "PC1_1")):
        h["CD1_1"] = (-scale, "east left [deg / pixel]")
        h["CD1_2"] = 0.0
        h["CD2_1"] = 0.0
        h["CD2_2"] = (scale, "north up [deg / pixel]")
    if len(shape) == 3:
        h.setdefault("WCSAXES", 2)  # the third axis is the band (BANDn keywords)
    return h


def write_cutout_fits(
    path, image, header: fits.Header, *, bad=None, pixel_scale: float = PIXEL_SCALE
) -> Path:
    """Write a cutout as FITS atomically (temporary name in the same folder, then rename).

    The primary HDU holds the float32 ``(band, y, x)`` image and header; when ``bad`` has
    any True pixel it is stored as a uint8 ``BADPIX`` image extension. The header gets
    ``BUNIT`` and, when it names the centre (``CRVAL1/2`` or ``RA/DEC``), a full TAN WCS at
    ``pixel_scale`` [arcsec / pixel] (or its ``PIXSCALE``), unless it has one already.
    """
    data = np.asarray(image, dtype=np.float32)
    header = _complete_header(header, data.shape, pixel_scale)
    hdus = [fits.PrimaryHDU(data, header=header)]
    if bad is not None and np.any(bad):
        hdus.append(fits.ImageHDU(np.asarray(bad, dtype=np.uint8), name="BADPIX"))
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
    return Path(path)


class CutoutSource(abc.ABC):
    """Anything that returns survey cutouts around sky positions.

    Subclasses implement :meth:`get`. ``cluster_id`` is an optional hint that sources
    keyed by object (files named by id, synthetic fields seeded by id) may use; sources
    keyed by position ignore it.
    """

    #: Pixel scale [arcsec / pixel] of the images this source returns.
    pixel_scale: float = PIXEL_SCALE

    @abc.abstractmethod
    def get(
        self, ra: float, dec: float, size: int, bands="grz", *, cluster_id=None
    ) -> tuple[np.ndarray, fits.Header]:
        """The cutout centred on (ra, dec) [deg], ``size`` pixels on a side.

        Returns
        -------
        image : ndarray
            float32 ``(len(bands), size, size)`` [nanomaggies], validated (see
            :func:`validate_cutout`).
        header : Header
            FITS header with the WCS when known, ``BANDS``, ``CLNBAD``, ``CLBADFR``.

        Raises
        ------
        CutoutError
            The cutout cannot be obtained or is not usable.
        """

    def invalidate(self, ra: float, dec: float, size: int, bands="grz") -> None:  # noqa: B027
        """Forget any cached copy of this cutout, so that the next :meth:`get` obtains it
        anew (``fetch --overwrite``). Sources without a cache do nothing."""


class FitsDirectoryCutouts(CutoutSource):
    """Cutouts already on disk, one FITS file per cluster, named by cluster id.

    The files are those :func:`~clusterlens.survey.fetch_cutouts` writes (or any FITS with
    a ``(band, y, x)`` image). ``get`` opens ``<directory>/<pattern with cluster_id>`` when
    ``cluster_id`` is given; otherwise it finds the file whose centre (``CRVAL1/2`` or
    ``RA/DEC`` keywords) lies within ``tolerance`` of (ra, dec), from an index of the
    folder's headers built on first use (and rebuilt once when a position is not found).
    A file larger than ``size`` is cropped about its centre; a smaller one raises.

    Parameters
    ----------
    directory : str or path-like
    pattern : str
        File name, formatted with ``cluster_id`` (default ``"{cluster_id}.fits"``).
    tolerance : float
        Largest distance [arcsec] between a requested position and a file's centre.
    nan_policy, max_bad_fraction
        See :func:`validate_cutout`.
    """

    def __init__(
        self,
        directory,
        *,
        pattern: str = "{cluster_id}.fits",
        tolerance: float = 1.0,
        nan_policy: str = "fill",
        max_bad_fraction: float = 0.25,
    ):
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise ParameterError(
                f"The 'directory' parameter of FitsDirectoryCutouts must be an existing "
                f"folder. Got {str(directory)!r} instead."
            )
        if "{cluster_id}" not in pattern:
            raise ParameterError(
                "The 'pattern' parameter of FitsDirectoryCutouts must contain '{cluster_id}'. "
                f"Got {pattern!r} instead."
            )
        self.pattern = pattern
        self.tolerance = check_scalar(tolerance, "tolerance", "FitsDirectoryCutouts", low=0)
        self.nan_policy = nan_policy
        self.max_bad_fraction = max_bad_fraction
        self._index = None

    def path_for(self, cluster_id) -> Path:
        """The file that holds ``cluster_id``'s cutout."""
        return self.directory / self.pattern.format(cluster_id=cluster_id)

    def _positions(self):
        if self._index is None:
            glob = self.pattern.replace("{cluster_id}", "*")
            paths, ras, decs = [], [], []
            for p in sorted(self.directory.glob(glob)):
                try:
                    h = fits.getheader(p)
                except Exception:  # unreadable files are reported when asked for by id
                    continue
                ra = h.get("CRVAL1", h.get("RA"))
                dec = h.get("CRVAL2", h.get("DEC"))
                if ra is not None and dec is not None:
                    paths.append(p)
                    ras.append(float(ra))
                    decs.append(float(dec))
            self._index = (paths, np.array(ras), np.array(decs))
        return self._index

    def _find(self, ra: float, dec: float) -> Path:
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        for _ in range(2):  # the folder may have grown since the index was built
            paths, ras, decs = self._positions()
            if paths:
                sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
                    SkyCoord(ras * u.deg, decs * u.deg)
                )
                i = int(np.argmin(sep))
                if sep[i].to_value(u.arcsec) <= self.tolerance:
                    return paths[i]
            self._index = None
        raise CutoutError(
            f"No cutout file in {str(self.directory)!r} is centred within {self.tolerance:g} "
            f"arcsec of RA={ra:.6f}, Dec={dec:.6f}."
        )

    def get(self, ra, dec, size, bands="grz", *, cluster_id=None) -> tuple[np.ndarray, fits.Header]:
        bands = check_bands(bands, "FitsDirectoryCutouts.get")
        size = check_size(size, "FitsDirectoryCutouts.get")
        ra = check_scalar(ra, "ra", "FitsDirectoryCutouts.get")
        dec = check_scalar(dec, "dec", "FitsDirectoryCutouts.get", low=-90, high=90)
        path = self.path_for(cluster_id) if cluster_id is not None else self._find(ra, dec)
        if not path.is_file():
            raise CutoutError(f"No cutout file {str(path)!r} for cluster {cluster_id!r}.")
        data, header = read_cutout_fits(path)
        if data.ndim == 3 and data.shape[1] >= size and data.shape[2] >= size:
            y0 = (data.shape[1] - size) // 2
            x0 = (data.shape[2] - size) // 2
            data = data[:, y0 : y0 + size, x0 : x0 + size]
            if "CRPIX1" in header and (x0 or y0):
                header = header.copy()
                header["CRPIX1"] -= x0
                header["CRPIX2"] -= y0
        data = _select_bands(data, header, bands, where=f"file {str(path)!r}")
        image, header, _ = validate_cutout(
            data,
            header,
            size=size,
            bands=bands,
            nan_policy=self.nan_policy,
            max_bad_fraction=self.max_bad_fraction,
            where=f"file {str(path)!r}",
        )
        return image, header


def _select_bands(data: np.ndarray, header: fits.Header, bands, *, where: str) -> np.ndarray:
    """Pick the requested planes of a file whose planes are labelled (``BANDS``/``BANDn``)."""
    if data.ndim != 3:
        return data
    have = None
    if "BANDS" in header and len(str(header["BANDS"])) == data.shape[0]:
        have = list(str(header["BANDS"]))
    elif all(f"BAND{i}" in header for i in range(data.shape[0])):
        have = _header_bands(header, data.shape[0])
    if have is None or have == list(bands):
        return data
    missing = [b for b in bands if b not in have]
    if missing:
        raise CutoutError(
            f"The {where} has bands {''.join(have)}; band(s) {''.join(missing)} missing."
        )
    for i in range(data.shape[0]):
        header.remove(f"BAND{i}", ignore_missing=True)
    header["BANDS"] = "".join(bands)
    return data[[have.index(b) for b in bands]]
