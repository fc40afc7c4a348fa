"""Small synthetic cluster cutouts for demos and tests of the inspection app.

Each cutout is a FITS file ``<id>.fits`` like those ``clusterlens fetch`` writes: a float32
``(3, size, size)`` g, r, z image in nanomaggies with a TAN WCS centred on the object. It
holds a red elliptical BCG at the centre, red member galaxies around it (circular Gaussian
blobs), a few bluer field galaxies, sky noise and, for lenses, a blue tangential arc at
radius ``theta_E`` around the BCG. This is a stand-in sky for the app, not a lensing
simulation (``clusterlens.fields`` is).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from clusterlens._validation import check_int, check_scalar
from clusterlens.survey.cutouts import PIXEL_SCALE, write_cutout_fits

__all__ = ["synthetic_cutout", "write_synthetic_cutouts", "make_demo_project"]

# colours as flux ratios g : r : z (nanomaggies) of a red-sequence galaxy and a blue arc
_RED = np.array([0.12, 0.45, 1.0], dtype=np.float32)
_BLUE = np.array([1.0, 0.9, 0.7], dtype=np.float32)
_NOISE = np.array([0.004, 0.006, 0.012], dtype=np.float32)  # sky rms per pixel, nanomaggies


def synthetic_cutout(
    size: int = 160,
    *,
    seed=0,
    theta_e: float | None = 8.0,
    n_members: int = 14,
    pixel_scale: float = PIXEL_SCALE,
) -> np.ndarray:
    """A synthetic g, r, z cutout, float32 ``(3, size, size)`` in nanomaggies.

    Parameters
    ----------
    size : int
        Side in pixels.
    seed : int or numpy.random.Generator
        Random state of the member positions, fluxes and noise.
    theta_e : float or None
        Radius of the blue arc from the BCG [arcsec]; ``None`` for no arc.
    n_members : int
        Member galaxies besides the BCG.
    pixel_scale : float
        Arcsec per pixel.
    """
    owner = "synthetic_cutout"
    size = check_int(size, "size", owner, low=16, high=2048)
    scale = check_scalar(pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = (xx - c) * scale  # arcsec, origin at the centre (the BCG)
    y = (yy - c) * scale
    light = np.zeros((size, size), np.float32)
    # BCG: elliptical Gaussian core plus an extended halo
    q, phi = 0.75, np.deg2rad(rng.uniform(0, 180))
    xr = np.cos(phi) * x + np.sin(phi) * y
    yr = -np.sin(phi) * x + np.cos(phi) * y
    r2 = xr**2 * q + yr**2 / q
    light += 2.0 * np.exp(-r2 / (2 * 1.2**2)) + 0.15 * np.exp(-np.sqrt(r2) / 3.0)
    image = light[None] * _RED[:, None, None]
    half = c * scale
    for _ in range(int(n_members)):
        px, py = rng.uniform(-0.85 * half, 0.85 * half, 2)
        flux, sigma = rng.uniform(0.3, 1.2), rng.uniform(0.6, 1.1)
        blob = flux * np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma**2))
        image += blob[None] * (_RED * rng.uniform(0.9, 1.1, 3).astype(np.float32))[:, None, None]
    for _ in range(3):  # bluer foreground/background field galaxies
        px, py = rng.uniform(-0.9 * half, 0.9 * half, 2)
        blob = rng.uniform(0.1, 0.4) * np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * 0.8**2))
        image += blob[None] * _BLUE[:, None, None] * 0.6
    if theta_e is not None:
        theta_e = check_scalar(theta_e, "theta_e", owner, low=0, low_inclusive=False)
        r = np.hypot(x, y)
        angle = np.arctan2(y, x)
        centre = rng.uniform(-np.pi, np.pi)
        opening = rng.uniform(0.6, 1.3)  # half-opening of the arc, radians
        d_angle = np.angle(np.exp(1j * (angle - centre)))
        along = np.exp(-0.5 * (d_angle / (opening / 2)) ** 4)
        arc = 0.35 * along * np.exp(-((r - theta_e) ** 2) / (2 * 0.45**2))
        image += arc[None].astype(np.float32) * _BLUE[:, None, None]
    image += rng.normal(size=image.shape).astype(np.float32) * _NOISE[:, None, None]
    return image.astype(np.float32)


def write_synthetic_cutouts(
    directory,
    objects,
    *,
    size: int = 160,
    seed: int = 0,
    lenses=(),
    pixel_scale: float = PIXEL_SCALE,
) -> list[Path]:
    """Write ``<id>.fits`` for each object, as ``clusterlens fetch`` lays them out.

    Parameters
    ----------
    directory : str or path-like
        Output folder (created).
    objects : astropy Table or mapping of columns
        Needs ``id``; ``ra`` and ``dec`` [deg] go into the WCS when present.
    size : int
        Side in pixels.
    seed : int
        Base seed; object ``i`` uses ``seed + i``.
    lenses : collection of ids
        Objects that get an arc (radius 5-12 arcsec).
    pixel_scale : float
        Arcsec per pixel.

    Returns
    -------
    list of Path
        The files written (atomically).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = list(objects.colnames if hasattr(objects, "colnames") else objects.keys())
    lenses = {str(i) for i in lenses}
    paths = []
    for i, oid in enumerate(objects["id"]):
        oid = str(oid)
        rng = np.random.default_rng(seed + i)
        theta_e = float(rng.uniform(5.0, 12.0)) if oid in lenses else None
        image = synthetic_cutout(size, seed=rng, theta_e=theta_e, pixel_scale=pixel_scale)
        header = fits.Header()
        ra = float(objects["ra"][i]) if "ra" in names else 0.0
        dec = float(objects["dec"][i]) if "dec" in names else 0.0
        header.update(
            {
                "CTYPE1": "RA---TAN",
                "CTYPE2": "DEC--TAN",
                "CRVAL1": ra,
                "CRVAL2": dec,
                "CRPIX1": (size + 1) / 2,
                "CRPIX2": (size + 1) / 2,
                "CD1_1": -pixel_scale / 3600,
                "CD1_2": 0.0,
                "CD2_1": 0.0,
                "CD2_2": pixel_scale / 3600,
                "BANDS": "grz",
            }
        )
        paths.append(write_cutout_fits(directory / f"{oid}.fits", image, header))
    return paths


def make_demo_project(folder, *, n: int = 40, n_lenses: int = 12, size: int = 160, seed: int = 0):
    """A search project with one open iteration of ``n`` synthetic candidates to grade.

    Writes ``<folder>/demo.sqlite`` and ``<folder>/cutouts/<id>.fits``; ``n_lenses``
    candidates drawn at random have arcs. For trying the app and for its tests.

    Returns
    -------
    (Path, Path)
        The project file and the cutout folder.
    """
    from astropy.table import Table

    from clusterlens.loop import SearchProject, TopK

    n = check_int(n, "n", "make_demo_project", low=1)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"CL{1000 + i:05d}" for i in range(n)]
    objects = Table(
        {
            "id": ids,
            "ra": rng.uniform(0, 360, n),
            "dec": np.degrees(np.arcsin(rng.uniform(-0.3, 0.9, n))),
            "z": rng.uniform(0.1, 0.9, n),
            "m500": 10 ** rng.uniform(14.0, 15.0, n),
        }
    )
    scores = np.sort(rng.uniform(0.5, 1.0, n))[::-1]
    cutouts = folder / "cutouts"
    lenses = rng.choice(ids, size=min(n_lenses, n), replace=False)
    write_synthetic_cutouts(cutouts, objects, size=size, seed=seed, lenses=lenses)
    path = folder / "demo.sqlite"
    project = SearchProject.create(path, objects, overwrite=True)
    project.record_iteration("demo-model", ids, scores, TopK(n))
    project.close()
    return path, cutouts
