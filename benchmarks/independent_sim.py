"""An independent cluster-lens simulator built on lenstronomy, for generalisation tests.

It writes test sets in clusterlens' dataset format (:class:`clusterlens.datasets.DatasetWriter`:
3 bands g, r, z, 0.262"/pixel, nanomaggies with zero point 22.5, 223 x 223 pixels like the
default mock datasets) while sharing *nothing* with :mod:`clusterlens.mock` but the format:

* **mass**: a mass-elliptical NFW (lenstronomy ``NFW_ELLIPSE_CSE``) with M200c log-uniform in
  1e14-1e15 Msun and the Duffy et al. (2008) c200c(M, z) relation (0.15 dex scatter), an
  external shear, and dual pseudo-isothermal (lenstronomy ``PJAFFE``) BCG and members with
  Faber-Jackson velocity dispersions; Planck18 cosmology;
* **PSF**: Moffat (beta 2.5-4.5), seeing and depth drawn per image and band;
* **source**: an elliptical Sérsic body plus 0-4 compact star-forming Sérsic clumps of their own
  colour, z_s uniform in 1-3.8 (with a g-band Lyman-break dimming above z 2.9);
* **field**: a de Vaucouleurs BCG with an n~1.5 envelope, members on a red sequence drawn
  from a Schechter function with a cored projected profile, field galaxies, stars and, in a
  fraction of all images (either label), arc-like confusers: tangentially stretched blue
  galaxies, ring galaxies and edge-on disks;
* **noise**: lenstronomy's :class:`~lenstronomy.SimulationAPI.observation_api.SingleBand`
  (sky background and Poisson noise), its exposure time derived from the point-source 5-sigma
  depth and the sky brightness;
* **visibility**: a positive is kept only when the PSF-convolved arc has an aperture S/N of at
  least ``min_arc_snr`` (pixels above half the noise, combined over bands) and its
  effective Einstein radius reaches ``min_einstein_radius``; negatives are clusters drawn the
  same way that *could* lens (same Einstein-radius rule) but carry no lensed source.

Every image ``i`` of a dataset with seed ``s`` comes from ``SeedSequence([s, i])`` alone.

    PYTHONPATH=. python benchmarks/independent_sim.py --n 300 --out /tmp/indep --png /tmp/png
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "IndependentSimConfig",
    "IndependentSimulator",
    "write_independent_dataset",
    "arc_aperture_snr",
    "moffat_kernel",
]

_C_KMS = 299792.458
_BANDS = ("g", "r", "z")


@dataclass(frozen=True)
class IndependentSimConfig:
    """Parameters of the independent simulator (angles arcsec, masses Msun, mags AB).

    The defaults were set from physical reasoning and Legacy Surveys DR9 numbers, not tuned
    to any network's scores.
    """

    size: int = 223
    margin: int = 16
    pixel_scale: float = 0.262
    supersample: int = 2
    log_m200_range: tuple = (14.0, 15.0)
    z_lens_range: tuple = (0.15, 0.75)
    z_source_range: tuple = (1.0, 3.8)
    concentration_scatter_dex: float = 0.15
    min_einstein_radius: float = 3.0
    min_arc_radius: float = 3.0
    min_magnification: float = 4.0
    min_arc_snr: float = 10.0
    source_mag_r_range: tuple = (22.0, 26.0)
    confuser_fraction: float = 0.4
    # DR9-like per-image conditions: r-band FWHM, and point-source 5 sigma depths g, r, z
    fwhm_r_range: tuple = (0.95, 1.75)
    psf_depth_ranges: tuple = ((24.1, 25.0), (23.6, 24.5), (22.7, 23.6))
    sky_mag: tuple = (22.1, 21.1, 19.2)
    read_noise: float = 7.0
    max_cluster_draws: int = 60
    max_source_draws: int = 6

    @property
    def n_sim(self) -> int:
        return self.size + 2 * self.margin


def moffat_kernel(fwhm: float, beta: float, pixel_scale: float, half: int = 20, sub: int = 5):
    """A normalised Moffat PSF image ((2 half + 1)^2 pixels), integrated over each pixel.

    ``I(r) ~ (1 + (r / alpha)^2)^-beta`` with ``alpha = fwhm / (2 sqrt(2^(1/beta) - 1))``.
    """
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    n = 2 * half + 1
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    coords = (np.arange(n) - half)[:, None] + offsets[None, :]
    coords = coords.ravel() * pixel_scale
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    img = (1.0 + (xx**2 + yy**2) / alpha**2) ** (-beta)
    img = img.reshape(n, sub, n, sub).mean(axis=(1, 3))
    return img / img.sum()


def arc_aperture_snr(arc, sigma) -> float:
    """Aperture S/N of a noiseless arc: per band the pixels where it exceeds half the noise,
    ``sum(arc) / sqrt(sum(sigma^2))`` there, combined over bands in quadrature."""
    arc = np.asarray(arc, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    total = 0.0
    for a, s in zip(arc, sigma, strict=True):
        mask = a > 0.5 * s
        if mask.any():
            total += a[mask].sum() ** 2 / (s[mask] ** 2).sum()
    return math.sqrt(total)


def _duffy_c200c(m200, z):
    # Duffy et al. (2008) full sample, c200 (critical), M in Msun/h with h = 0.6766
    return 5.71 * (m200 * 0.6766 / 2e12) ** -0.084 * (1.0 + z) ** -0.47


def _red_sequence(z):
    """g - r and r - z of an early-type galaxy at redshift z (observed frame, approximate)."""
    return min(0.72 + 2.2 * z, 1.95), 0.38 + 1.25 * z


class _Stamp:
    """Accumulates light profiles on a supersampled grid, only where each one is bright."""

    def __init__(self, n, pixel_scale, bands=3):
        self.n, self.pix = n, pixel_scale
        self.image = np.zeros((bands, n, n))

    def add(self, func, kwargs, fluxes, x0, y0, radius, sub=3, norm=None):
        """Add a profile ``func(x, y, **kwargs)`` with total ``fluxes`` per band.

        The stamp of half-side ``radius`` [arcsec] is normalised to its own sum, unless it
        is cut by the image edge and the profile's analytic integral ``norm`` [flux per
        arcsec^2 x arcsec^2] is known: then the light outside the image is lost, as in a
        real cutout.
        """
        n, pix = self.n, self.pix
        c = (n - 1) / 2
        col, row = x0 / pix + c, y0 / pix + c
        half = int(min(max(radius / pix, 6), n))
        lo_c, hi_c = int(col) - half, int(col) + half + 1
        lo_r, hi_r = int(row) - half, int(row) + half + 1
        c0, c1, r0, r1 = max(lo_c, 0), min(hi_c, n), max(lo_r, 0), min(hi_r, n)
        if c0 >= c1 or r0 >= r1:
            return
        offsets = (np.arange(sub) + 0.5) / sub - 0.5
        xs = ((np.arange(c0, c1)[:, None] + offsets).ravel() - c) * pix
        ys = ((np.arange(r0, r1)[:, None] + offsets).ravel() - c) * pix
        xx, yy = np.meshgrid(xs, ys)
        val = func(xx.ravel(), yy.ravel(), **kwargs).reshape(r1 - r0, sub, c1 - c0, sub)
        val = val.mean(axis=(1, 3))
        clipped = (c0, c1, r0, r1) != (lo_c, hi_c, lo_r, hi_r)
        total = norm / pix**2 if (clipped and norm is not None) else val.sum()
        if total <= 0:
            return
        shape = val / total
        for b, f in enumerate(fluxes):
            self.image[b, r0:r1, c0:c1] += f * shape

    def add_point(self, fluxes, x0, y0):
        n, pix = self.n, self.pix
        c = (n - 1) / 2
        col, row = x0 / pix + c, y0 / pix + c
        i, j = int(math.floor(row)), int(math.floor(col))
        fy, fx = row - i, col - j
        for di, dj, w in (
            (0, 0, (1 - fy) * (1 - fx)),
            (1, 0, fy * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 1, fy * fx),
        ):
            if 0 <= i + di < n and 0 <= j + dj < n:
                self.image[:, i + di, j + dj] += np.asarray(fluxes) * w


def _mag_to_nmgy(mag):
    return 10.0 ** ((22.5 - np.asarray(mag, dtype=float)) / 2.5)


class IndependentSimulator:
    """Draws one image (positive or negative) at a time; see the module docstring.

    Parameters
    ----------
    config : IndependentSimConfig, optional
    """

    def __init__(self, config: IndependentSimConfig | None = None):
        from astropy.cosmology import Planck18
        from lenstronomy.LightModel.Profiles.sersic import SersicElliptic

        self.config = IndependentSimConfig() if config is None else config
        self.cosmo = Planck18
        from lenstronomy.LightModel.light_model import LightModel

        self._sersic = SersicElliptic()
        self._sersic_norm = LightModel(["SERSIC_ELLIPSE"])
        cfg = self.config
        n, ss = cfg.n_sim, cfg.supersample
        c = (n - 1) / 2
        offsets = (np.arange(ss) + 0.5) / ss - 0.5
        fine = ((np.arange(n)[:, None] + offsets).ravel() - c) * cfg.pixel_scale
        self._fine_x, self._fine_y = (a.ravel() for a in np.meshgrid(fine, fine))
        fine_pix = (np.arange(n)[:, None] + offsets).ravel()
        rows, cols = np.meshgrid(fine_pix, fine_pix, indexing="ij")
        self._fine_pix = np.stack([rows.ravel(), cols.ravel()])
        native = (np.arange(n) - c) * cfg.pixel_scale
        self._native_x, self._native_y = (a.ravel() for a in np.meshgrid(native, native))
        step = 4  # coarse grid of ~1" cells for the lens's critical region
        coarse = (np.arange(0, n, step) - c) * cfg.pixel_scale
        self._coarse = coarse
        self._coarse_x, self._coarse_y = (a.ravel() for a in np.meshgrid(coarse, coarse))
        self._coarse_cell = step * cfg.pixel_scale

    # -- conditions -----------------------------------------------------------------------
    def _conditions(self, rng):
        from lenstronomy.SimulationAPI.observation_api import SingleBand

        cfg = self.config
        fwhm_r = rng.uniform(*cfg.fwhm_r_range)
        fwhms = fwhm_r * np.array([1.07, 1.0, 0.93]) * rng.uniform(0.95, 1.05, 3)
        beta = rng.uniform(2.5, 4.5)
        bands = []
        for b in range(3):
            kernel = moffat_kernel(fwhms[b], beta, cfg.pixel_scale)
            depth = rng.uniform(*cfg.psf_depth_ranges[b])
            sky_mag = cfg.sky_mag[b] + rng.uniform(-0.25, 0.25)
            # point-source depth: f5 = 5 sigma_pix / sqrt(sum p^2) for the PSF p
            sigma = _mag_to_nmgy(depth) / 5.0 * math.sqrt((kernel**2).sum())
            sky = float(_mag_to_nmgy(sky_mag)) * cfg.pixel_scale**2
            rn = cfg.read_noise
            exptime = (sky + math.sqrt(sky**2 + 4 * sigma**2 * rn**2)) / (2 * sigma**2)
            band = SingleBand(
                pixel_scale=cfg.pixel_scale,
                exposure_time=exptime,
                magnitude_zero_point=22.5,
                read_noise=rn,
                ccd_gain=1.0,
                sky_brightness=sky_mag,
                seeing=fwhms[b],
                psf_type="PIXEL",
                kernel_point_source=kernel,
                data_count_unit="e-",
            )
            bands.append({"band": band, "kernel": kernel, "fwhm": fwhms[b], "depth": depth})
        return {"bands": bands, "moffat_beta": beta}

    # -- cluster --------------------------------------------------------------------------
    def _cluster(self, rng):
        from lenstronomy.Util.param_util import phi_q2_ellipticity

        cfg = self.config
        log_m = rng.uniform(*cfg.log_m200_range)
        m200 = 10.0**log_m
        z_l = rng.uniform(*cfg.z_lens_range)
        conc = _duffy_c200c(m200, z_l) * 10.0 ** rng.normal(0.0, cfg.concentration_scatter_dex)
        dm = float(self.cosmo.distmod(z_l).value)
        arcsec_kpc = float(self.cosmo.arcsec_per_kpc_proper(z_l).value)
        gr, rz = _red_sequence(z_l)
        k_r = 1.8 * z_l  # rough early-type K correction in r
        phi_bcg = rng.uniform(-90, 90)
        q_halo = rng.uniform(0.5, 0.95)
        phi_halo = phi_bcg + rng.normal(0, 15)
        e1, e2 = phi_q2_ellipticity(math.radians(phi_halo), q_halo)
        half = cfg.n_sim * cfg.pixel_scale / 2
        # BCG: de Vaucouleurs core + envelope
        mag_bcg = -23.6 + rng.normal(0, 0.35) + dm + k_r
        sigma_bcg = rng.uniform(260, 380)
        members = [
            {
                "x": 0.0,
                "y": 0.0,
                "mag_r": mag_bcg,
                "gr": gr,
                "rz": rz,
                "sigma": sigma_bcg,
                "r_e": rng.uniform(8, 20) * arcsec_kpc,
                "n": 4.0,
                "q": rng.uniform(0.6, 0.9),
                "phi": phi_bcg,
                "bcg": True,
            }
        ]
        richness = rng.poisson(14.0 * (m200 / 1e14) ** 0.55)
        rc = rng.uniform(10, 30)
        rmax = half * math.sqrt(2)
        u = rng.uniform(size=richness)
        radii = rc * np.sqrt(np.exp(u * math.log1p((rmax / rc) ** 2)) - 1.0)
        angles = rng.uniform(0, 2 * np.pi, size=richness)
        mstar = -21.4
        for r, a in zip(radii, angles, strict=True):
            # Schechter alpha = -1.05 by rejection on [M* - 2, M* + 3.5]
            while True:
                absmag = rng.uniform(mstar - 2.0, mstar + 3.5)
                lum = 10 ** (-0.4 * (absmag - mstar))
                # dN/dM ~ L^(alpha + 1) exp(-L), at most 1.13 on this range
                if rng.uniform() * 1.2 < lum ** (-0.05) * math.exp(-lum):
                    break
            mag = absmag + dm + k_r
            if mag > 23.8:
                continue
            x, y = r * math.cos(a), r * math.sin(a)
            if abs(x) > half or abs(y) > half:
                continue
            members.append(
                {
                    "x": x,
                    "y": y,
                    "mag_r": mag,
                    "gr": gr + rng.normal(0, 0.06),
                    "rz": rz + rng.normal(0, 0.05),
                    "sigma": 200.0 * lum**0.27,
                    "r_e": 3.5 * lum**0.6 * arcsec_kpc * rng.lognormal(0, 0.25),
                    "n": rng.uniform(2.5, 4.5),
                    "q": rng.uniform(0.45, 0.95),
                    "phi": rng.uniform(-90, 90),
                    "bcg": False,
                }
            )
        return {
            "m200": m200,
            "log_m200": log_m,
            "z_lens": z_l,
            "c200": conc,
            "e1": e1,
            "e2": e2,
            "q_halo": q_halo,
            "gamma_ext": rng.uniform(0, 0.06),
            "phi_ext": rng.uniform(-np.pi, np.pi),
            "members": members,
            "arcsec_kpc": arcsec_kpc,
        }

    def _lens_model(self, cluster, z_s):
        from lenstronomy.Cosmo.lens_cosmo import LensCosmo
        from lenstronomy.LensModel.lens_model import LensModel

        lc = LensCosmo(z_lens=cluster["z_lens"], z_source=z_s, cosmo=self.cosmo)
        rs, alpha_rs = lc.nfw_physical2angle(M=cluster["m200"], c=cluster["c200"])
        models = ["NFW_ELLIPSE_CSE", "SHEAR"]
        g1 = cluster["gamma_ext"] * math.cos(2 * cluster["phi_ext"])
        g2 = cluster["gamma_ext"] * math.sin(2 * cluster["phi_ext"])
        kwargs = [
            {
                "Rs": rs,
                "alpha_Rs": alpha_rs,
                "e1": cluster["e1"],
                "e2": cluster["e2"],
                "center_x": 0.0,
                "center_y": 0.0,
            },
            {"gamma1": g1, "gamma2": g2, "ra_0": 0.0, "dec_0": 0.0},
        ]
        for m in cluster["members"]:
            theta_e = lc.sis_sigma_v2theta_E(m["sigma"])
            ra = 0.15 * (m["sigma"] / 220.0)
            rs_m = (25.0 if m["bcg"] else 6.0) * (m["sigma"] / 220.0) ** 2
            rs_m = max(rs_m, 3 * ra)
            # kappa -> theta_E / (2 R) between Ra and Rs, as for an SIS of the same sigma
            sigma0 = theta_e / (2 * ra) * (rs_m - ra) / rs_m
            models.append("PJAFFE")
            kwargs.append(
                {"sigma0": sigma0, "Ra": ra, "Rs": rs_m, "center_x": m["x"], "center_y": m["y"]}
            )
        return LensModel(models, cosmo=self.cosmo), kwargs

    def _ray_shoot_fine(self, lens, kwargs):
        """Source-plane positions of the supersampled grid.

        The deflection is computed on the native pixel grid and interpolated (cubic) to the
        sub-pixels: it varies little within 0.26" except in the cores of members, and this
        is 4x cheaper than lenstronomy's ray shooting at every sub-pixel.
        """
        from scipy.ndimage import map_coordinates

        n = self.config.n_sim
        ax, ay = lens.alpha(self._native_x, self._native_y, kwargs)
        fine_ax = map_coordinates(ax.reshape(n, n), self._fine_pix, order=3, mode="nearest")
        fine_ay = map_coordinates(ay.reshape(n, n), self._fine_pix, order=3, mode="nearest")
        return self._fine_x - fine_ax, self._fine_y - fine_ay

    def _critical_region(self, lens, kwargs):
        """(effective Einstein radius, candidate image positions, their |mu|)."""
        cfg = self.config
        fxx, fxy, _, fyy = lens.hessian(self._coarse_x, self._coarse_y, kwargs)
        kappa = 0.5 * (fxx + fyy)
        gamma = np.hypot(0.5 * (fxx - fyy), fxy)
        lam_t = 1 - kappa - gamma
        det = (1 - kappa) ** 2 - gamma**2
        mu = np.abs(1.0 / np.where(det == 0, 1e-12, det))
        theta_e = math.sqrt((lam_t < 0).sum() * self._coarse_cell**2 / math.pi)
        r = np.hypot(self._coarse_x, self._coarse_y)
        crop_half = cfg.size * cfg.pixel_scale / 2 - 2.0
        ok = (
            (mu >= cfg.min_magnification)
            & (r >= cfg.min_arc_radius)
            & (np.abs(self._coarse_x) < crop_half)
            & (np.abs(self._coarse_y) < crop_half)
        )
        return theta_e, np.flatnonzero(ok), mu

    # -- light ----------------------------------------------------------------------------
    def _sersic_kwargs(self, r_e, n, q, phi, x, y):
        from lenstronomy.Util.param_util import phi_q2_ellipticity

        e1, e2 = phi_q2_ellipticity(math.radians(phi), q)
        return {
            "amp": 1.0,
            "R_sersic": max(r_e, 0.03),
            "n_sersic": n,
            "e1": e1,
            "e2": e2,
            "center_x": x,
            "center_y": y,
        }

    def _add_sersic(self, stamp, mag_r, gr, rz, r_e, n, q, phi, x, y, extent=6.0):
        kw = self._sersic_kwargs(r_e, n, q, phi, x, y)
        fr = float(_mag_to_nmgy(mag_r))
        fluxes = (fr * 10 ** (-0.4 * gr), fr, fr * 10 ** (0.4 * rz))
        sub = 3 if r_e < 0.6 else 2 if r_e < 2 else 1
        norm = self._sersic_norm.total_flux([kw])[0]
        stamp.add(self._sersic.function, kw, fluxes, x, y, extent * max(r_e, 0.3) + 2, sub, norm)

    def _field(self, rng, cluster, conditions):
        cfg = self.config
        stamp = _Stamp(cfg.n_sim, cfg.pixel_scale)
        half = cfg.n_sim * cfg.pixel_scale / 2
        for m in cluster["members"]:
            if m["bcg"]:
                # 65% of the light in the de Vaucouleurs core, the rest in a wide envelope
                core = m["mag_r"] - 2.5 * math.log10(0.65)
                env = m["mag_r"] - 2.5 * math.log10(0.35)
                self._add_sersic(
                    stamp,
                    core,
                    m["gr"],
                    m["rz"],
                    m["r_e"],
                    4.0,
                    m["q"],
                    m["phi"],
                    0.0,
                    0.0,
                    extent=10,
                )
                self._add_sersic(
                    stamp,
                    env,
                    m["gr"] - 0.05,
                    m["rz"],
                    4.5 * m["r_e"],
                    1.5,
                    m["q"] * 0.9,
                    m["phi"],
                    0.0,
                    0.0,
                    extent=6,
                )
            else:
                self._add_sersic(
                    stamp,
                    m["mag_r"],
                    m["gr"],
                    m["rz"],
                    m["r_e"],
                    m["n"],
                    m["q"],
                    m["phi"],
                    m["x"],
                    m["y"],
                )
        # field galaxies: counts rising as 10^(0.33 m) between r = 19 and 24.5
        n_field = rng.poisson(30 * (cfg.n_sim / 239) ** 2)
        for _ in range(n_field):
            u = rng.uniform()
            lo, hi = 10 ** (0.33 * 19), 10 ** (0.33 * 24.5)
            mag = math.log10(lo + u * (hi - lo)) / 0.33
            red = rng.uniform() < 0.35
            gr = rng.uniform(1.0, 1.8) if red else rng.uniform(0.1, 0.9)
            rz = rng.uniform(0.5, 1.3) if red else rng.uniform(-0.1, 0.8)
            self._add_sersic(
                stamp,
                mag,
                gr,
                rz,
                rng.lognormal(math.log(0.45), 0.45),
                rng.uniform(3, 4.5) if red else rng.uniform(0.7, 1.5),
                rng.uniform(0.3, 1.0),
                rng.uniform(-90, 90),
                rng.uniform(-half, half),
                rng.uniform(-half, half),
            )
        # stars on a rough stellar locus
        stars = []
        for _ in range(rng.poisson(4)):
            mag = rng.uniform(16.5, 23.5)
            gr = rng.uniform(0.3, 1.5)
            rz = max(0.0, 0.9 * (gr - 0.35) + rng.normal(0, 0.1))
            fr = float(_mag_to_nmgy(mag))
            stars.append(
                (
                    (fr * 10 ** (-0.4 * gr), fr, fr * 10 ** (0.4 * rz)),
                    rng.uniform(-half, half),
                    rng.uniform(-half, half),
                )
            )
        for fluxes, x, y in stars:
            stamp.add_point(fluxes, x, y)
        confusers = []
        if rng.uniform() < cfg.confuser_fraction:
            for _ in range(rng.integers(1, 4)):
                kind = ("streak", "ring", "edge-on")[rng.integers(3)]
                confusers.append(kind)
                self._confuser(stamp, rng, kind)
        return stamp.image, confusers, len(stars), n_field

    def _confuser(self, stamp, rng, kind):
        r = rng.uniform(4.0, 24.0)
        a = rng.uniform(0, 2 * np.pi)
        x, y = r * math.cos(a), r * math.sin(a)
        mag = rng.uniform(20.5, 23.5)
        gr, rz = rng.uniform(-0.1, 0.5), rng.uniform(-0.1, 0.5)
        if kind == "streak":  # an unlensed blue galaxy elongated tangentially
            phi = math.degrees(a) + 90 + rng.normal(0, 8)
            self._add_sersic(
                stamp,
                mag,
                gr,
                rz,
                rng.uniform(1.0, 3.0),
                rng.uniform(0.5, 1.0),
                rng.uniform(0.08, 0.2),
                phi,
                x,
                y,
            )
        elif kind == "edge-on":
            self._add_sersic(
                stamp,
                mag,
                rng.uniform(0.2, 1.2),
                rng.uniform(0.2, 0.8),
                rng.uniform(1.0, 2.5),
                1.0,
                rng.uniform(0.1, 0.2),
                rng.uniform(-90, 90),
                x,
                y,
            )
        else:  # a ring galaxy: a Gaussian annulus, sometimes with a red core

            def ring(xx, yy, radius, width, q, phi, center_x, center_y):
                c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
                dx, dy = xx - center_x, yy - center_y
                u, v = c * dx + s * dy, (-s * dx + c * dy) / q
                return np.exp(-0.5 * ((np.hypot(u, v) - radius) / width) ** 2)

            radius = rng.uniform(1.0, 3.0)
            kw = {
                "radius": radius,
                "width": rng.uniform(0.15, 0.4) * radius,
                "q": rng.uniform(0.5, 1.0),
                "phi": rng.uniform(-90, 90),
                "center_x": x,
                "center_y": y,
            }
            fr = float(_mag_to_nmgy(mag))
            stamp.add(
                ring,
                kw,
                (fr * 10 ** (-0.4 * gr), fr, fr * 10 ** (0.4 * rz)),
                x,
                y,
                radius * 2 + 3,
                3,
            )
            if rng.uniform() < 0.5:
                self._add_sersic(
                    stamp, mag + rng.uniform(0.5, 1.5), 1.2, 0.7, 0.4, 3.0, 0.9, 0.0, x, y
                )

    def _source(self, rng, z_s):
        """lenstronomy SERSIC_ELLIPSE body + SERSIC clumps: (profiles, kwargs, fluxes)."""
        from lenstronomy.Util.param_util import phi_q2_ellipticity

        cfg = self.config
        mag = rng.uniform(*cfg.source_mag_r_range)
        gr, rz = rng.uniform(-0.2, 0.5), rng.uniform(-0.2, 0.6)
        if z_s > 3.0:  # the Lyman break enters g
            gr += rng.uniform(0.5, 1.2)
        r_e = rng.lognormal(math.log(0.3), 0.4)
        e1, e2 = phi_q2_ellipticity(rng.uniform(0, np.pi), rng.uniform(0.35, 1.0))
        ftot = float(_mag_to_nmgy(mag))
        n_clumps = int(rng.integers(0, 5))
        clump_frac = rng.uniform(0.1, 0.4) if n_clumps else 0.0
        parts = [
            (
                {"R_sersic": r_e, "n_sersic": rng.uniform(0.6, 2.5), "e1": e1, "e2": e2},
                0.0,
                0.0,
                (1 - clump_frac) * ftot,
                gr,
                rz,
            )
        ]
        for k in range(n_clumps):
            w = rng.dirichlet(np.ones(n_clumps))[k] if n_clumps > 1 else 1.0
            dx, dy = rng.normal(0, 0.8 * r_e, 2)
            parts.append(
                (
                    {"R_sersic": rng.uniform(0.04, 0.12), "n_sersic": 1.0, "e1": 0.0, "e2": 0.0},
                    dx,
                    dy,
                    clump_frac * ftot * w,
                    gr - rng.uniform(0.1, 0.4),
                    rz - rng.uniform(0.0, 0.3),
                )
            )
        return parts, {
            "source_mag_r": mag,
            "source_gr": gr,
            "source_rz": rz,
            "source_r_e": r_e,
            "source_n_clumps": n_clumps,
        }

    def _render_source(self, parts, beta_x, beta_y, bx, by):
        from lenstronomy.LightModel.light_model import LightModel

        cfg = self.config
        n, ss = cfg.n_sim, cfg.supersample
        img = np.zeros((3, n, n))
        pix_area = cfg.pixel_scale**2 / ss**2
        for kw, dx, dy, flux, gr, rz in parts:
            kw = dict(kw, amp=1.0, center_x=bx + dx, center_y=by + dy)
            model = LightModel(["SERSIC_ELLIPSE"])
            # surface brightness is conserved: evaluate at the source-plane positions; the
            # unlensed total flux of amp = 1 normalises it
            total = model.total_flux([kw])[0]
            sb = model.surface_brightness(beta_x, beta_y, [kw]) * pix_area / total
            sb = sb.reshape(n, ss, n, ss).sum(axis=(1, 3))
            for b, f in enumerate((flux * 10 ** (-0.4 * gr), flux, flux * 10 ** (0.4 * rz))):
                img[b] += f * sb
        return img

    @staticmethod
    def _convolve(image, conditions):
        from lenstronomy.ImSim.Numerics.convolution import PixelKernelConvolution

        out = np.empty_like(image)
        for b, band in enumerate(conditions["bands"]):
            conv = PixelKernelConvolution(band["kernel"], convolution_type="fft")
            out[b] = conv.convolution2d(image[b])
        return out

    def _crop(self, image):
        m = self.config.margin
        return image[..., m : m + self.config.size, m : m + self.config.size]

    # -- one image ------------------------------------------------------------------------
    def simulate(self, seed: int, index: int, label: int, *, with_arc: bool = True):
        """Image ``index`` of a dataset made with ``seed``.

        Parameters
        ----------
        seed, index : int
            The image comes from ``SeedSequence([seed, index])``.
        label : int
            1: a lensed arc that passes the visibility rule; 0: none.
        with_arc : bool
            For a positive, False returns its negative counterpart: the same cluster, field,
            conditions and noise draw, without the arc.

        Returns
        -------
        dict
            ``image`` (3, size, size) float32 [nanomaggies], ``arc`` (noiseless, convolved
            arc, zeros for negatives), ``sigma`` (per-pixel noise), ``params`` (dict).
        """
        cfg = self.config
        root = np.random.SeedSequence([int(seed), int(index)])
        for attempt in range(cfg.max_cluster_draws):
            rng = np.random.default_rng(root.spawn(attempt + 1)[attempt])
            cluster = self._cluster(rng)
            z_s = rng.uniform(
                max(cfg.z_source_range[0], cluster["z_lens"] + 0.3), cfg.z_source_range[1]
            )
            lens, kwargs = self._lens_model(cluster, z_s)
            theta_e, candidates, mu = self._critical_region(lens, kwargs)
            if theta_e < cfg.min_einstein_radius or candidates.size == 0:
                continue
            conditions = self._conditions(rng)
            field, confusers, n_stars, n_field = self._field(rng, cluster, conditions)
            noise_seed = int(rng.integers(2**31 - 1))
            arc = np.zeros_like(field)
            src_params = {}
            if label == 1:
                beta = self._ray_shoot_fine(lens, kwargs)
                field_conv = self._crop(self._convolve(field, conditions))
                weights = np.minimum(mu[candidates], 50.0)
                found = False
                for _ in range(cfg.max_source_draws):
                    k = candidates[rng.choice(candidates.size, p=weights / weights.sum())]
                    tx = self._coarse_x[k] + rng.uniform(-0.5, 0.5) * self._coarse_cell
                    ty = self._coarse_y[k] + rng.uniform(-0.5, 0.5) * self._coarse_cell
                    bx, by = lens.ray_shooting(tx, ty, kwargs)
                    bx, by = float(bx) + rng.normal(0, 0.1), float(by) + rng.normal(0, 0.1)
                    parts, src_params = self._source(rng, z_s)
                    arc = self._convolve(self._render_source(parts, *beta, bx, by), conditions)
                    sigma = self._sigma(field_conv + self._crop(arc), conditions)
                    snr = arc_aperture_snr(self._crop(arc), sigma)
                    if snr >= cfg.min_arc_snr:
                        found = True
                        src_params.update(
                            {
                                "arc_snr": snr,
                                "image_x": tx,
                                "image_y": ty,
                                "arc_radius": math.hypot(tx, ty),
                            }
                        )
                        break
                if not found:
                    continue
                if not with_arc:
                    arc = np.zeros_like(field)
            model = self._crop(self._convolve(field, conditions) + arc)
            sigma = self._sigma(model, conditions)
            image = model + self._noise(model, conditions, noise_seed)
            params = {
                "z_lens": cluster["z_lens"],
                "z_source": z_s,
                "log_m200": cluster["log_m200"],
                "c200": cluster["c200"],
                "q_halo": cluster["q_halo"],
                "gamma_ext": cluster["gamma_ext"],
                "einstein_radius": theta_e,
                "n_members": len(cluster["members"]) - 1,
                "n_field": n_field,
                "n_stars": n_stars,
                "n_confusers": len(confusers),
                "confusers": ",".join(confusers),
                "moffat_beta": conditions["moffat_beta"],
                "cluster_draws": attempt + 1,
            }
            for b, name in enumerate(_BANDS):
                params[f"psf_fwhm_{name}"] = float(conditions["bands"][b]["fwhm"])
                params[f"psf_depth_{name}"] = float(conditions["bands"][b]["depth"])
            params.update(src_params if label == 1 else {})
            return {
                "image": image.astype(np.float32),
                "arc": self._crop(arc).astype(np.float32),
                "sigma": sigma.astype(np.float32),
                "params": params,
            }
        raise RuntimeError(
            f"Image {index}: no cluster in {cfg.max_cluster_draws} draws gave a "
            f"{'visible arc' if label else 'lens-capable cluster'}; lower min_arc_snr or "
            "min_einstein_radius."
        )

    @staticmethod
    def _sigma(model, conditions):
        return np.stack(
            [
                c["band"].estimate_noise(np.clip(model[b], 0, None))
                for b, c in enumerate(conditions["bands"])
            ]
        )

    @staticmethod
    def _noise(model, conditions, seed):
        return np.stack(
            [
                c["band"].noise_for_model(np.clip(model[b], 0, None), seed=seed + b)
                for b, c in enumerate(conditions["bands"])
            ]
        )


def write_independent_dataset(
    path,
    n_images: int,
    *,
    seed: int = 0,
    n_positive: int | None = None,
    config: IndependentSimConfig | None = None,
    progress: bool = False,
):
    """Write ``n_images`` images (the first ``n_positive``, default half, lenses) to ``path``
    in clusterlens' dataset format and return the :class:`~clusterlens.datasets.LensDataset`.

    An unfinished dataset with the same settings resumes where it stopped; a dataset at
    ``path`` made with other settings (seed, size, configuration) is deleted and rewritten.
    """
    from clusterlens.datasets import DatasetWriter, LensDataset

    config = IndependentSimConfig() if config is None else config
    n_positive = n_images // 2 if n_positive is None else int(n_positive)
    attrs = {
        "simulator": "benchmarks.independent_sim",
        "seed": int(seed),
        "n_positive": n_positive,
        "config": asdict(config),
    }
    path = Path(path)
    if path.exists() and (path / "zarr.json").exists():
        import json

        user = json.loads((path / "zarr.json").read_text())["attributes"].get("user")
        if json.loads(json.dumps(user)) != json.loads(json.dumps(attrs)):
            import shutil

            shutil.rmtree(path)
    writer = DatasetWriter(
        path,
        n_images,
        (3, config.size, config.size),
        pixel_scale=config.pixel_scale,
        creator="benchmarks.independent_sim (lenstronomy)",
        attrs=attrs,
    )
    if writer.complete:
        return LensDataset(path)
    sim = IndependentSimulator(config)
    todo = writer.missing()
    t0 = time.perf_counter()
    for k, index in enumerate(todo):
        label = int(index < n_positive)
        out = sim.simulate(seed, int(index), label)
        writer.write(int(index), out["image"], label, out["params"])
        if progress and (k + 1) % 25 == 0:
            rate = (time.perf_counter() - t0) / (k + 1)
            print(f"  independent_sim: {k + 1}/{todo.size} images, {rate:.2f} s/image", flush=True)
    return writer.finalize()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", help="folder for RGB previews of the first images")
    parser.add_argument("--n-png", type=int, default=12)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    ds = write_independent_dataset(args.out, args.n, seed=args.seed, progress=True)
    dt = time.perf_counter() - t0
    print(f"{ds}: {dt:.1f} s ({dt / args.n:.2f} s/image)")
    if args.png:
        from clusterlens.survey.rgb import make_rgb, save_png

        out = Path(args.png)
        out.mkdir(parents=True, exist_ok=True)
        n_pos = int((ds.view_labels == 1).sum())
        picks = list(range(min(args.n_png // 2, n_pos))) + list(
            range(n_pos, min(n_pos + args.n_png // 2, len(ds)))
        )
        for k in picks:
            image, label = ds[k]
            save_png(make_rgb(image), out / f"{k:04d}_label{label}.png")
        print(f"previews in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
