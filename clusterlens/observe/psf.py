"""Point-spread functions and FFT convolution of (band, y, x) images.

A PSF turns into a pixel kernel with :meth:`image` for a given pixel scale: an odd-sized,
centred, float64 array that sums to one.  :func:`convolve` applies one PSF per band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import erf

from clusterlens._validation import check_array, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.observe._kernels import convolve_separable

__all__ = [
    "LEGACY_SURVEYS_FWHM",
    "FWHM_TO_SIGMA",
    "GaussianPSF",
    "PixelPSF",
    "legacy_surveys_psfs",
    "convolve",
]

#: Typical delivered seeing FWHM [arcsec] of DECaLS in g, r, z.  The Legacy Surveys' catalogs
#: give it per object (``psfsize_g/r/z``); about 1.3, 1.2, 1.1 arcsec is typical of DECaLS
#: with a spread of +-0.2 arcsec (BASS/MzLS in the north are worse, ~1.5-1.7 arcsec in g).
LEGACY_SURVEYS_FWHM: tuple[float, float, float] = (1.3, 1.2, 1.1)

#: sigma = FWHM / (2 sqrt(2 ln 2)) for a Gaussian.
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class GaussianPSF:
    """A circular Gaussian PSF.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum [arcsec], > 0.
    size : int, optional
        Side of the kernel [pixels], odd; default ``2 ceil(2 fwhm / pixel_scale) + 1`` (out to
        about +-4.7 sigma, where the Gaussian has dropped to 1.5e-5 of its peak).
    """

    fwhm: float
    size: int | None = None

    def __post_init__(self):
        f = check_scalar(self.fwhm, "fwhm", "GaussianPSF", low=0.0, low_inclusive=False)
        object.__setattr__(self, "fwhm", f)
        if self.size is not None:
            _check_odd(self.size, "size", "GaussianPSF")

    @property
    def sigma(self) -> float:
        """Gaussian sigma [arcsec]."""
        return self.fwhm * FWHM_TO_SIGMA

    def image(self, pixel_scale: float) -> np.ndarray:
        """Pixel kernel: the Gaussian integrated over each pixel (erf differences), sum 1.

        Parameters
        ----------
        pixel_scale : float
            Pixel size [arcsec].
        """
        profile = self.profile(pixel_scale)
        kernel = np.outer(profile, profile)
        return kernel / kernel.sum()

    def profile(self, pixel_scale: float) -> np.ndarray:
        """The 1-D kernel along x or y (sum 1): :meth:`image` is its outer product with itself.

        Parameters
        ----------
        pixel_scale : float
            Pixel size [arcsec].
        """
        scale = check_scalar(
            pixel_scale, "pixel_scale", "GaussianPSF.profile", low=0.0, low_inclusive=False
        )
        size = self.size or 2 * math.ceil(2.0 * self.fwhm / scale) + 1
        half = size // 2
        edges = (np.arange(-half, half + 2) - 0.5) * scale / (math.sqrt(2.0) * self.sigma)
        profile = np.diff(0.5 * erf(edges))
        return profile / profile.sum()


@dataclass(frozen=True, eq=False)
class PixelPSF:
    """A PSF given as a pixelised image (for example a survey's PSF model at a position).

    Parameters
    ----------
    kernel : array_like, 2-D
        PSF image; both sides odd, peak in the central pixel, finite, positive sum.  It is
        normalised to sum 1 (small negative wings of fitted PSF models are kept).
    pixel_scale : float
        Pixel size [arcsec] of ``kernel``; it must equal that of the images it convolves (no
        resampling is done).
    """

    kernel: np.ndarray
    pixel_scale: float = 0.262

    def __post_init__(self):
        owner = "PixelPSF"
        img = check_array(self.kernel, "kernel", owner, ndim=2)
        if img.shape[0] % 2 == 0 or img.shape[1] % 2 == 0:
            raise ParameterError(
                f"The 'kernel' parameter of {owner} must have odd sides so that the PSF is "
                f"centred on a pixel. Got shape {img.shape} instead."
            )
        total = img.sum()
        if not total > 0:
            raise ParameterError(
                f"The 'kernel' parameter of {owner} must have a positive sum. Got {total!r}."
            )
        peak = np.unravel_index(np.argmax(img), img.shape)
        centre = (img.shape[0] // 2, img.shape[1] // 2)
        if max(abs(peak[0] - centre[0]), abs(peak[1] - centre[1])) > 1:
            raise ParameterError(
                f"The 'kernel' parameter of {owner} must peak at its central pixel {centre}. "
                f"Got the peak at {tuple(int(p) for p in peak)}."
            )
        scale = check_scalar(self.pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False)
        kernel = img / total
        kernel.setflags(write=False)
        object.__setattr__(self, "kernel", kernel)
        object.__setattr__(self, "pixel_scale", scale)

    def image(self, pixel_scale: float) -> np.ndarray:
        """The normalised kernel; ``pixel_scale`` [arcsec] must match the PSF's own."""
        scale = check_scalar(
            pixel_scale, "pixel_scale", "PixelPSF.image", low=0.0, low_inclusive=False
        )
        if abs(scale - self.pixel_scale) > 1e-6 * self.pixel_scale:
            raise ParameterError(
                f"The 'pixel_scale' parameter of PixelPSF.image must equal the PSF's own pixel "
                f"scale {self.pixel_scale} arcsec. Got {scale} instead."
            )
        return np.array(self.kernel)


def legacy_surveys_psfs() -> tuple[GaussianPSF, GaussianPSF, GaussianPSF]:
    """Gaussian PSFs with the typical DECaLS FWHM in g, r, z (:data:`LEGACY_SURVEYS_FWHM`)."""
    return tuple(GaussianPSF(f) for f in LEGACY_SURVEYS_FWHM)


def convolve(image, psfs, *, pixel_scale: float = 0.262) -> np.ndarray:
    """Convolve each band of a (band, y, x) image with its PSF by FFT.

    Parameters
    ----------
    image : array_like, shape ``(band, ny, nx)``
        Fluxes per pixel (e.g. nanomaggies); the total flux is conserved away from the edges.
    psfs : PSF or sequence of PSF
        One PSF for every band, or one PSF used for all bands.
    pixel_scale : float
        Pixel size [arcsec] of ``image``.

    Returns
    -------
    ndarray, float64, same shape as ``image``
        ``scipy.signal.fftconvolve(..., mode="same")`` per band: the kernel's centre pixel
        maps onto the same pixel.  A :class:`GaussianPSF` is separable and is applied as two
        1-D convolutions summed directly (same result to rounding, ~10x faster at 253^2).
    """
    owner = "convolve"
    img = check_array(image, "image", owner, ndim=3)
    if not isinstance(psfs, list | tuple):
        psfs = (psfs,) * img.shape[0]
    if len(psfs) != img.shape[0]:
        raise ParameterError(
            f"The 'psfs' parameter of {owner} must hold one PSF per band ({img.shape[0]}). "
            f"Got {len(psfs)} instead."
        )
    out = np.empty_like(img)
    for band, psf in enumerate(psfs):
        if not hasattr(psf, "image"):
            raise ParameterError(
                f"The 'psfs' parameter of {owner} must hold PSF objects (GaussianPSF, "
                f"PixelPSF). Got {type(psf).__name__} for band {band}."
            )
        if isinstance(psf, GaussianPSF):
            convolve_separable(img[band], psf.profile(pixel_scale), out[band])
        else:
            out[band] = fftconvolve(img[band], psf.image(pixel_scale), mode="same")
    return out


def _check_odd(size, name, owner):
    if (
        isinstance(size, bool)
        or not isinstance(size, int | np.integer)
        or size < 1
        or size % 2 == 0
    ):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a positive odd integer. Got {size!r}."
        )
