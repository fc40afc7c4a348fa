"""A seeded toy dataset (faint arcs on noise and blobs) to check that training learns at all."""

from __future__ import annotations

import numpy as np

from clusterlens._validation import check_scalar
from clusterlens.datasets.reader import LensDataset
from clusterlens.datasets.writer import DatasetWriter

__all__ = ["write_toy_dataset"]


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
