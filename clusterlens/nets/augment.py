"""Augmentations for what changes from one sky to another, applied to training batches.

A finder trained on one simulator learns that simulator's seeing, depth, calibration and sky
subtraction along with the arcs.  :class:`SkyAugmentation` varies them on the fly, on whole
batches of raw fluxes (before the input transform), in torch:

* **PSF blur**: a Gaussian of random extra FWHM (0 to ``psf_fwhm_arcsec``) per image and band;
* **noise level**: Gaussian noise of 0 to ``noise`` times the noise measured on each cutout
  (1.4826 MAD of its outer region, on a quarter of its pixels), i.e. a shallower survey;
* **flux scale**: every image times a log-uniform factor in ``flux_scale``, and each band by a
  further ``exp(N(0, colour_jitter))``;
* **background offset**: each band shifted by a uniform 0 +- ``background_offset`` noise units
  (residual sky after another sky subtraction).

The geometric ones, rotations by 90 degrees, flips and shifts of a few whole pixels, are
:class:`clusterlens.datasets.Augmentation`, applied per image by the data loader
(``TrainingConfig.augment`` / ``max_shift``).  Labels are never changed: every operation keeps
a lens a lens.  The draws of batch ``step`` of epoch ``epoch`` depend only on
``(seed, epoch, step)``, so a resumed run draws the same as an uninterrupted one.

With the per-cutout :class:`~clusterlens.nets.transforms.RobustAsinhStretch` the flux scale,
colour jitter and background offset are absorbed by the normalisation (the network sees the
same numbers); they matter for the fixed :class:`~clusterlens.nets.transforms.AsinhStretch`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.nets.transforms import robust_background_noise

__all__ = ["GENERALISATION", "SkyAugmentation", "gaussian_blur"]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def gaussian_blur(images: torch.Tensor, sigma_pixels: torch.Tensor) -> torch.Tensor:
    """Blur each (image, band) plane of a (batch, band, y, x) batch by its own Gaussian.

    Parameters
    ----------
    images : Tensor, shape (batch, band, y, x)
    sigma_pixels : Tensor, shape (batch, band)
        Gaussian sigma in pixels per plane (0: unchanged).

    Returns
    -------
    Tensor of the same shape and dtype; edges are reflected, the flux of every plane kept.
    """
    batch, bands, height, width = images.shape
    sigma = sigma_pixels.to(images.device, torch.float32).reshape(-1)
    radius = int(math.ceil(3.0 * float(sigma.max()))) if sigma.numel() else 0
    radius = min(radius, height - 1, width - 1)
    if radius < 1:
        return images
    t = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    safe = sigma.clamp_min(1e-3)[:, None]
    kernel = torch.exp(-0.5 * (t[None, :] / safe) ** 2)
    delta = (t == 0).float()[None, :].expand_as(kernel)
    kernel = torch.where(sigma[:, None] < 1e-3, delta, kernel)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    x = images.reshape(1, batch * bands, height, width).float()
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = torch.nn.functional.conv2d(x, kernel[:, None, :, None], groups=batch * bands)
    x = torch.nn.functional.conv2d(x, kernel[:, None, None, :], groups=batch * bands)
    return x.reshape(batch, bands, height, width).to(images.dtype)


def _augmentation_noise(images: torch.Tensor) -> torch.Tensor:
    """The (batch, band, 1, 1) noise that the added noise and offsets are scaled by.

    :func:`~clusterlens.nets.transforms.robust_background_noise` of every other pixel of every
    other row: a quarter of the pixels, 4x faster (its four medians were a fifth of a CPU
    training step), with a statistical error of ~2% on a 128-pixel crop, which only scales
    amplitudes that are drawn at random anyway.  The input transform still measures every
    pixel of the augmented image.
    """
    sub = images[..., ::2, ::2] if min(images.shape[-2:]) >= 16 else images
    return robust_background_noise(sub)[1]


@dataclass(frozen=True)
class SkyAugmentation:
    """Random changes of seeing, depth, calibration and sky level of a training batch.

    Parameters
    ----------
    psf_fwhm_arcsec : float
        Largest extra Gaussian blur, FWHM in arcsec, drawn uniformly per image and band
        (0.4; 0: none).  Added in quadrature to the image's own PSF.
    noise : float
        Largest added Gaussian noise in units of the cutout's measured noise, drawn uniformly
        per image (1.0: up to sqrt(2) times the original noise; 0: none).
    flux_scale : (float, float)
        Range of the log-uniform flux factor per image ((0.5, 2.0); (1, 1): none).
    colour_jitter : float
        Sigma of the log-normal extra factor per band (0.1; 0: none).
    background_offset : float
        Largest sky offset per band in noise units, uniform in +- (1.0; 0: none).
    pixel_scale : float
        Arcsec per pixel of the images (0.262, the Legacy Surveys').
    seed : int
        Seed of the draws.
    """

    psf_fwhm_arcsec: float = 0.4
    noise: float = 1.0
    flux_scale: tuple = (0.5, 2.0)
    colour_jitter: float = 0.1
    background_offset: float = 1.0
    pixel_scale: float = 0.262
    seed: int = 0

    def __post_init__(self):
        owner = "SkyAugmentation"
        for name in ("psf_fwhm_arcsec", "noise", "colour_jitter", "background_offset"):
            object.__setattr__(self, name, check_scalar(getattr(self, name), name, owner, low=0))
        object.__setattr__(
            self,
            "pixel_scale",
            check_scalar(self.pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False),
        )
        scale = self.flux_scale
        if (
            not isinstance(scale, tuple | list)
            or len(scale) != 2
            or not all(isinstance(v, int | float) and v > 0 for v in scale)
            or scale[0] > scale[1]
        ):
            raise ParameterError(
                "The 'flux_scale' parameter of SkyAugmentation must be (low, high) with "
                f"0 < low <= high. Got {scale!r} instead."
            )
        object.__setattr__(self, "flux_scale", (float(scale[0]), float(scale[1])))
        object.__setattr__(self, "seed", check_int(self.seed, "seed", "SkyAugmentation", low=0))

    def to_dict(self) -> dict:
        """Plain data (saved in the training configuration)."""
        data = asdict(self)
        data["flux_scale"] = list(self.flux_scale)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SkyAugmentation:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        if not isinstance(data, dict):
            raise ParameterError(f"A SkyAugmentation is described by a dict; got {data!r}.")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParameterError(
                f"Unknown SkyAugmentation option(s) {unknown}; known: {sorted(names)}."
            )
        data = dict(data)
        if "flux_scale" in data and isinstance(data["flux_scale"], list):
            data["flux_scale"] = tuple(data["flux_scale"])
        return cls(**data)

    def __call__(self, images: torch.Tensor, *, epoch: int = 0, step: int = 0) -> torch.Tensor:
        """Augment a (batch, band, y, x) batch of fluxes; same shape, dtype and device."""
        if images.ndim != 4:
            raise ParameterError(
                f"SkyAugmentation takes (batch, band, y, x) images; got {tuple(images.shape)}."
            )
        batch, bands = images.shape[:2]
        rng = np.random.default_rng([self.seed, int(epoch), int(step)])
        device, dtype = images.device, images.dtype

        def tensor(values):
            return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device)

        noise = _augmentation_noise(images)
        out = images
        if self.psf_fwhm_arcsec > 0:
            fwhm = rng.uniform(0.0, self.psf_fwhm_arcsec, size=(batch, bands))
            out = gaussian_blur(out, tensor(fwhm / _FWHM_PER_SIGMA / self.pixel_scale))
        low, high = self.flux_scale
        factor = np.exp(rng.uniform(np.log(low), np.log(high), size=(batch, 1)))
        if self.colour_jitter > 0:
            factor = factor * np.exp(rng.normal(0.0, self.colour_jitter, size=(batch, bands)))
        factor = np.broadcast_to(factor, (batch, bands))
        out = out * tensor(factor)[:, :, None, None].to(dtype)
        noise = noise * tensor(factor)[:, :, None, None].to(dtype)
        if self.noise > 0:
            level = rng.uniform(0.0, self.noise, size=(batch, 1, 1, 1))
            generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            field = torch.randn(images.shape, generator=generator, dtype=torch.float32)
            out = out + field.to(device, dtype) * tensor(level).to(dtype) * noise
        if self.background_offset > 0:
            offset = rng.uniform(-self.background_offset, self.background_offset, (batch, bands))
            out = out + tensor(offset)[:, :, None, None].to(dtype) * noise
        return out


#: The default "generalisation" set of the ``cpu`` and ``gpu`` training recipes.
GENERALISATION = SkyAugmentation()
