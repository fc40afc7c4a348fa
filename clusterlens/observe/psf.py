"""Point-spread functions and convolution of (band, y, x) images.

A PSF turns into a pixel kernel with :meth:`image` for a given pixel scale: an odd-sized,
centred, float64 array that sums to one.  :func:`convolve` applies one PSF per band: a
:class:`GaussianPSF` as two 1-D passes (it is separable), a :class:`MoffatPSF` or
:class:`PixelPSF` by FFT.  Every PSF has a ``fwhm`` [arcsec].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy.special import erf

from clusterlens._validation import as_value, check_array, check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.observe._kernels import (
    add_kernel_at,
    convolve_separable,
    split_bright,
    symmetric_kernel_spectrum,
)

__all__ = [
    "LEGACY_SURVEYS_FWHM",
    "FWHM_TO_SIGMA",
    "GaussianPSF",
    "MoffatPSF",
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
        object.__setattr__(self, "fwhm", as_value(self.fwhm, "arcsec", "fwhm", "GaussianPSF"))
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


@dataclass(frozen=True)
class MoffatPSF:
    """A circular Moffat (1969) PSF, the usual model of seeing-limited ground-based PSFs.

    ``I(r) = (beta - 1) / (pi alpha^2) (1 + r^2 / alpha^2)^-beta`` (unit total flux) with
    ``alpha = fwhm / (2 sqrt(2^(1/beta) - 1))``; the flux outside radius ``R`` is
    ``(1 + R^2 / alpha^2)^(1 - beta)``.  ``beta -> inf`` is a Gaussian; atmospheric
    (Kolmogorov) seeing is close to ``beta ~ 4.765`` (Trujillo et al. 2001) and survey PSFs
    with their telescope wings to ``beta ~ 2.5-3.5``.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum [arcsec], > 0.
    beta : float
        Moffat index, > 1 (the wings fall as ``r^(-2 beta)``).
    size : int, optional
        Side of the kernel [pixels], odd; default: the smallest odd side whose inscribed
        circle holds all but :attr:`FLUX_TOLERANCE` of the flux (71 pixels for
        ``fwhm = 1.3``, ``beta = 2.5`` at 0.262"; 47 for ``beta = 3``), capped at 301.
    """

    fwhm: float
    beta: float = 3.0
    size: int | None = None

    #: Flux fraction a default-sized kernel leaves out (the kernel is renormalised to 1).
    FLUX_TOLERANCE = 2e-3

    def __post_init__(self):
        object.__setattr__(self, "fwhm", as_value(self.fwhm, "arcsec", "fwhm", "MoffatPSF"))
        f = check_scalar(self.fwhm, "fwhm", "MoffatPSF", low=0.0, low_inclusive=False)
        b = check_scalar(self.beta, "beta", "MoffatPSF", low=1.0, high=100.0, low_inclusive=False)
        object.__setattr__(self, "fwhm", f)
        object.__setattr__(self, "beta", b)
        if self.size is not None:
            _check_odd(self.size, "size", "MoffatPSF")

    @property
    def alpha(self) -> float:
        """Core radius ``alpha`` [arcsec]."""
        return self.fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / self.beta) - 1.0))

    def radius_enclosing(self, fraction: float) -> float:
        """Radius [arcsec] of the circle holding ``fraction`` (0 < f < 1) of the flux."""
        f = check_scalar(
            fraction, "fraction", "MoffatPSF.radius_enclosing", low=0.0, high=1.0,
            low_inclusive=False, high_inclusive=False,
        )  # fmt: skip
        return self.alpha * math.sqrt((1.0 - f) ** (1.0 / (1.0 - self.beta)) - 1.0)

    def profile_value(self, r) -> np.ndarray:
        """Surface density [1/arcsec^2] at radius ``r`` [arcsec] (integrates to 1)."""
        a2 = self.alpha**2
        return (self.beta - 1.0) / (math.pi * a2) * (1.0 + np.asarray(r) ** 2 / a2) ** -self.beta

    def image(self, pixel_scale: float) -> np.ndarray:
        """Pixel kernel, sum 1: the profile averaged over 5 x 5 points per pixel within
        ``1.5 FWHM + 2`` pixels of the centre, its pixel-centre value further out.

        Parameters
        ----------
        pixel_scale : float
            Pixel size [arcsec].
        """
        scale = check_scalar(
            pixel_scale, "pixel_scale", "MoffatPSF.image", low=0.0, low_inclusive=False
        )
        size = self.size
        if size is None:
            r = self.radius_enclosing(1.0 - self.FLUX_TOLERANCE) / scale
            size = min(2 * math.ceil(r) + 1, 301)
        return np.array(_moffat_kernel(self.fwhm, self.beta, int(size), scale))


@lru_cache(maxsize=256)
def _moffat_kernel(fwhm, beta, size, scale):
    # cached: a field's three kernels are asked for by every convolution of its arcs
    psf = MoffatPSF(fwhm, beta)
    half = size // 2
    axis = np.arange(-half, half + 1) * scale
    kernel = psf.profile_value(np.hypot(axis[:, None], axis[None, :]))
    # pixel averages (5 x 5 points) where the profile curves; further out the pixel-centre
    # value differs from the average by < 2e-4 of the peak (a few % of the faint wing
    # pixels' own value), and the wings are most of the pixels
    core = min(half, int(math.ceil(1.5 * fwhm / scale)) + 2)
    sub = 5
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    fine_axis = (np.arange(-core, core + 1)[:, None] + offsets[None, :]).ravel() * scale
    fine = psf.profile_value(np.hypot(fine_axis[:, None], fine_axis[None, :]))
    n = 2 * core + 1
    kernel[half - core : half + core + 1, half - core : half + core + 1] = fine.reshape(
        n, sub, n, sub
    ).mean(axis=(1, 3))
    kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


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

    @cached_property
    def fwhm(self) -> float:
        """FWHM [arcsec] of the better fit of a pixel-integrated Moffat (free ``beta``) and
        Gaussian profile to the kernel's central square (at most 41 pixels): exact for
        Moffat and Gaussian kernels, the core width of others."""
        from clusterlens.observe._starfit import _fit_star

        k = np.asarray(self.kernel, float)
        h = min(k.shape[0] // 2, k.shape[1] // 2, 20)
        cy, cx = k.shape[0] // 2, k.shape[1] // 2
        stamp = k[cy - h : cy + h + 1, cx - h : cx + h + 1]
        stamp = stamp / stamp.max()
        fits = [_fit_star(stamp, 1.0, model) for model in ("moffat", "gaussian")]
        best = min(fits, key=lambda f: f[3])
        return float(best[0] * self.pixel_scale)


def legacy_surveys_psfs() -> tuple[GaussianPSF, GaussianPSF, GaussianPSF]:
    """Gaussian PSFs with the typical DECaLS FWHM in g, r, z (:data:`LEGACY_SURVEYS_FWHM`)."""
    return tuple(GaussianPSF(f) for f in LEGACY_SURVEYS_FWHM)


def convolve(
    image, psfs, *, pixel_scale: float = 0.262, trim: int = 0, atol: float | None = None
) -> np.ndarray:
    """Convolve each band of a (band, y, x) image with its PSF.

    Parameters
    ----------
    image : array_like, shape ``(band, ny, nx)``
        Fluxes per pixel (e.g. nanomaggies); the total flux is conserved away from the edges.
    psfs : PSF or sequence of PSF
        One PSF for every band, or one PSF used for all bands: :class:`GaussianPSF`,
        :class:`MoffatPSF`, :class:`PixelPSF` or any object with ``image(pixel_scale)``.
    pixel_scale : float
        Pixel size [arcsec] of ``image``.
    trim : int
        Pixels cut from each side of the result [pixels], ``0 <= 2 trim < min(ny, nx)``:
        the result is ``convolve(image, psfs)[:, trim:ny - trim, trim:nx - trim]`` (the
        light of the cut border still reaches the pixels kept), computed without the cut
        pixels: the Gaussian passes skip them, the FFTs are shorter.
    atol : float, optional
        Absolute error allowed per pixel [image units], > 0.  With it, each FFT band runs
        in single precision (~3x faster) on the pixels fainter than ``atol /``
        ``FLOAT32_FFT_ERROR`` (whose float32 rounding stays below ``atol``; measured
        errors are ~2e-7 of the brightest input pixel) and adds the brighter ones exactly
        (a direct sum of the kernel around each); a band with more than 2% of such pixels
        keeps the float64 FFT.  ``None``: float64 throughout.

    Returns
    -------
    ndarray, float64, shape ``(band, ny - 2 trim, nx - 2 trim)``
        The result of ``scipy.signal.fftconvolve(..., mode="same")`` per band: the
        kernel's centre pixel maps onto the same pixel.  A :class:`GaussianPSF` is separable
        and is applied as two 1-D convolutions summed directly (same result to rounding,
        ~10x faster at 253^2); the other bands go through a real FFT each, on a periodic
        grid just long enough that nothing wraps onto the pixels returned (the kernel
        transforms of Moffat PSFs cached by their parameters and grid): ~4 ms CPU for three
        Moffat bands of 277^2 with ``trim = 27`` against ~8 ms for the untrimmed linear
        convolution (docs/observe.md).
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
    _, ny, nx = img.shape
    if (
        isinstance(trim, bool)
        or not isinstance(trim, int | np.integer)
        or trim < 0
        or 2 * trim >= min(ny, nx)
    ):
        raise ParameterError(
            f"The 'trim' parameter of {owner} must be an integer with 0 <= 2 trim < "
            f"{min(ny, nx)} (the image's shorter side). Got {trim!r} instead."
        )
    trim = int(trim)
    tol = None
    if atol is not None:
        tol = check_scalar(atol, "atol", owner, low=0.0, low_inclusive=False)
    out = np.empty((img.shape[0], ny - 2 * trim, nx - 2 * trim))
    for band, psf in enumerate(psfs):
        if not hasattr(psf, "image"):
            raise ParameterError(
                f"The 'psfs' parameter of {owner} must hold PSF objects (GaussianPSF, "
                f"MoffatPSF, PixelPSF). Got {type(psf).__name__} for band {band}."
            )
        if isinstance(psf, GaussianPSF):
            convolve_separable(img[band], psf.profile(pixel_scale), out[band], trim)
        else:
            key = _kernel_key(psf, pixel_scale)
            _fft_convolve(img[band], psf.image(pixel_scale), key, trim, out[band], tol)
    return out


def _kernel_key(psf, pixel_scale):
    # only the analytic PSFs are keyed (by value); a PixelPSF's FFT is recomputed
    if isinstance(psf, MoffatPSF):
        return ("moffat", psf.fwhm, psf.beta, psf.size, pixel_scale)
    return None


_KERNEL_FFTS: dict = {}
_KERNEL_FFT_CACHE = 24


def _periodic_length(n: int, half: int, trim: int) -> int:
    """Shortest fast FFT length ``L`` at which the periodic convolution of ``n`` pixels with
    a kernel of half-width ``half`` equals the linear one on pixels ``trim .. n - trim - 1``.

    Output pixel ``i`` takes input ``j`` through the kernel at ``(i - j) mod L``; inside
    the kept pixels ``|i - j| <= n - 1 - trim``, which must not wrap onto the kernel's
    support ``[-half, half]``: ``L >= n - trim + half``.  The grid also holds the image
    (``L >= n``) and the whole kernel (``L >= 2 half + 1``).  With ``trim = 0`` that is
    ``n + half`` instead of the ``n + 2 half - 1`` of a linear (zero-padded) convolution."""
    return sp_fft.next_fast_len(max(n - trim + half, n, 2 * half + 1), real=True)


def _wrapped_kernel(kernel, ly, lx):
    """``kernel`` (odd sides) on an ``(ly, lx)`` periodic grid with its centre at (0, 0)."""
    ky, kx = kernel.shape
    hy, hx = ky // 2, kx // 2
    grid = np.zeros((ly, lx))
    grid[:ky, :kx] = kernel
    return np.roll(grid, (-hy, -hx), axis=(0, 1))


#: Largest error of a float32 FFT convolution per unit of its brightest input pixel: ~2e-7
#: measured on synthetic fields (tests/test_observe.py), taken with a factor 8 of margin.
FLOAT32_FFT_ERROR = 1.6e-6
_MAX_BRIGHT_FRACTION = 0.02


def _fft_convolve(image, kernel, key, trim, out, atol=None):
    """``out`` = ``fftconvolve(image, kernel, mode="same")`` (2-D) without ``trim`` pixels on
    each side: one real FFT on the periodic grid of :func:`_periodic_length`.  The kernel's
    transform is cached by ``key`` (PSF parameters) and grid: a field's PSFs convolve the
    field and every arc drawn on it, and the kernel transform is a third of the work."""
    ny, nx = image.shape
    # kernel pixels further than the image's extent never meet a pixel: cut them, so that a
    # kernel larger than the image needs no larger grid
    hy = min(kernel.shape[0] // 2, ny - 1)
    hx = min(kernel.shape[1] // 2, nx - 1)
    cy, cx = kernel.shape[0] // 2, kernel.shape[1] // 2
    kernel = kernel[cy - hy : cy + hy + 1, cx - hx : cx + hx + 1]
    fy = _periodic_length(ny, hy, trim)
    fx = _periodic_length(nx, hx, trim)
    full_key = None if key is None else (key, fy, fx, hy, hx)
    kfft = _KERNEL_FFTS.get(full_key) if full_key is not None else None
    if kfft is None:
        if key is not None and key[0] == "moffat":
            # circular: its transform is a real cosine sum, ~10x cheaper than the FFT
            kfft = symmetric_kernel_spectrum(np.ascontiguousarray(kernel), fy, fx)
        else:
            kfft = sp_fft.rfft2(_wrapped_kernel(kernel, fy, fx))
        if full_key is not None:
            if len(_KERNEL_FFTS) >= _KERNEL_FFT_CACHE:
                _KERNEL_FFTS.pop(next(iter(_KERNEL_FFTS)))
            _KERNEL_FFTS[full_key] = kfft
    if atol is not None:
        # float32 FFT of the faint pixels (rounding below atol), the bright ones exact
        faint = np.empty(image.shape, np.float32)
        max_bright = int(_MAX_BRIGHT_FRACTION * image.size)
        bright = split_bright(image, atol / FLOAT32_FFT_ERROR, max_bright, faint)
        if bright is not None:
            spectrum = sp_fft.rfft2(faint, (fy, fx))
            spectrum *= kfft.astype(np.float32) if np.isrealobj(kfft) else kfft.astype(np.complex64)
            out[:, :] = sp_fft.irfft2(spectrum, (fy, fx))[trim : ny - trim, trim : nx - trim]
            rows, cols, values = bright
            if rows.size:
                add_kernel_at(out, np.ascontiguousarray(kernel), rows, cols, values, trim)
            return out
    spectrum = sp_fft.rfft2(image, (fy, fx))
    spectrum *= kfft
    out[:, :] = sp_fft.irfft2(spectrum, (fy, fx))[trim : ny - trim, trim : nx - trim]
    return out


def _check_odd(size, name, owner):
    if check_int(size, name, owner, low=1) % 2 == 0:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a positive odd integer. Got {size!r}."
        )
