"""The mock cluster-lens simulator (section 2.2 and Table 1 of Zhang et al.).

Steps for one mock, on the pixels that survive the final crop plus a PSF margin:

1. the cluster (:class:`ClusterScene`: cutout, BCG redshift, M500, member table) gives a
   halo of the registered profile ``halo.profile`` (default the elliptical NFW: q ~
   normal(0.75, 0.1) in [0.4, 1], phi uniform, c500c from a c-M relation with log-normal
   scatter), the members as ``members.profile`` (default truncated dPIEs; sigma from the
   stellar mass, cut radii ~ sigma^2) and the BCG as its own component (``[bcg]``); with
   ``halo.mass_budget`` the galaxies' mass inside R500 is taken out of the halo
   (:func:`mass_budget`), so the total stays M500;
2. the lens is reduced to maps of its deflection and Hessian at a reference source
   redshift ``z_ref`` (the population's highest).  All the mass is at the cluster redshift,
   so for any source redshift the deflection is the map times
   ``s = (D_ls/D_s)(z_s) / (D_ls/D_s)(z_ref)``: one map per cluster serves every source;
3. the effective Einstein radius ``sqrt(A / pi)``, with ``A`` the area of the region around
   the lens centre where ``lambda_t = 1 - s (kappa + gamma) < 0`` (inside the tangential
   critical curve), is read off the map for any ``s``.  A halo that stays below
   ``min_einstein_radius`` even at ``z_ref`` is rejected before anything is rendered, and
   otherwise the source redshift is drawn only above the redshift where the lens reaches
   it, so the paper's 5" cut costs no rendering at all;
4. the source (:class:`~clusterlens.sources.SourcePopulation`) is centred behind a pixel of
   high ``|mu|`` near the tangential critical curve (:class:`PlacementConfig`), ray-traced
   with the adaptive Sérsic render, convolved with the PSF
   (:func:`clusterlens.observe.convolve`), given its shot noise
   (:func:`~clusterlens.observe.add_arc_noise`) and kept if its S/N passes the visibility
   rule;
5. the arc is cropped and added to the cluster's cropped cutout.

This module is the public face: the value objects live in ``_scene.py``, steps 1-3's lens in
``_lens.py`` and steps 4-5's source side in ``_arcs.py`` (the methods the simulator inherits).
"""

from __future__ import annotations

import numpy as np
from astropy.cosmology import FlatLambdaCDM

from clusterlens import cosmology as cosmo
from clusterlens._validation import check_scalar
from clusterlens.errors import ParameterError
from clusterlens.lensing import pixel_grid
from clusterlens.mock._arcs import _MIN_SOURCE_BEHIND, _ArcSteps, visible_pixels
from clusterlens.mock._lens import LensMaps, _resolve, mass_budget
from clusterlens.mock._scene import ClusterScene, LensRejected, MockResult, observation_params
from clusterlens.mock.config import MockConfig
from clusterlens.observe import SurveyConditions
from clusterlens.profiles import SIEPopulation
from clusterlens.profiles.base import Composite, MassProfile
from clusterlens.sources import SourcePopulation

__all__ = [
    "ClusterScene",
    "MockResult",
    "LensRejected",
    "MockLensSimulator",
    "LensMaps",
    "observation_params",
    "mass_budget",
]

# The value objects, the lens maps and the arcs' steps live in private modules (_scene, _lens,
# _arcs); this module stays their public home: their __module__ says so, which keeps their
# pickles, reprs and API pages what they were before the split.  The two dataclasses keep
# their own module: Sphinx reads their fields' docs from its source.
for _public in (
    LensRejected, LensMaps, observation_params, mass_budget, visible_pixels,
):  # fmt: skip
    _public.__module__ = __name__
del _public


class MockLensSimulator(_ArcSteps):
    """Make mock cluster lenses following section 2.2 of the paper.

    Parameters
    ----------
    config : MockConfig, optional
        Default: the realistic model (``MockConfig()``); ``preset_config("paper")`` is the
        paper's Table 1.
    population : SourcePopulation or CatalogSourcePopulation, optional
        Default ``SourcePopulation(config.source)``.
    cosmology : astropy.cosmology.Cosmology, optional
        Default FlatLambdaCDM(H0=70, Om0=0.3).

    Examples
    --------
    >>> from clusterlens.mock import MockLensSimulator, synthetic_scene
    >>> sim = MockLensSimulator()
    >>> scene = synthetic_scene(sim.config, z_lens=0.3, m500=1e15, seed=1)
    >>> result = sim.simulate(scene, seed=2)          # doctest: +SKIP
    >>> result.image.shape, result.params["einstein_radius"] >= 5.0   # doctest: +SKIP
    ((3, 223, 223), True)
    """

    def __init__(self, config: MockConfig | None = None, *, population=None, cosmology=None):
        self.config = MockConfig() if config is None else config
        if not isinstance(self.config, MockConfig):
            raise ParameterError(
                "The 'config' parameter of MockLensSimulator must be a MockConfig. "
                f"Got {type(self.config).__name__} instead."
            )
        self.cosmology = FlatLambdaCDM(H0=70.0, Om0=0.3) if cosmology is None else cosmology
        if population is None:
            population = SourcePopulation(self.config.source, cosmology=self.cosmology)
        self.population = population
        if not hasattr(self.population, "draw_table"):
            raise ParameterError(
                "The 'population' parameter of MockLensSimulator must be a source population "
                f"(with draw_table). Got {type(self.population).__name__} instead."
            )
        # scenes without conditions of their own are observed with the nominal (median) ones
        self.conditions = self.config.observation.nominal
        self.margin = self.config.psf_margin
        self.crop = self.config.image.crop_size
        self.sim_size = self.crop + 2 * self.margin
        x, y = pixel_grid(self.sim_size, self.conditions.pixel_scale)
        self._x, self._y = x, y
        self._r = np.hypot(x, y)
        inner = np.zeros(x.shape, dtype=bool)
        m = self.margin
        inner[m : m + self.crop, m : m + self.crop] = True
        self._inner = inner
        self.z_ref = self._max_redshift()
        mass = self.config
        self._halo_cls = _resolve(mass.halo.profile, "halo.profile", "from_m500")
        self._member_cls = _resolve(mass.members.profile, "members.profile", "from_sigma")
        self._bcg_cls = (
            _resolve(mass.bcg.profile, "bcg.profile", "from_sigma") if mass.bcg.enabled else None
        )
        # Gaussian PSFs: convolve applies them as two 1-D passes (separable); Moffat PSFs go
        # through one FFT of the three bands with cached kernel transforms
        self._psfs = self.conditions.psfs
        self._last_ratio_table = None

    def scene_conditions(self, scene: ClusterScene) -> SurveyConditions:
        """The observing conditions of ``scene``: its own, or the simulator's nominal ones."""
        return self.conditions if scene.conditions is None else scene.conditions

    def _max_redshift(self) -> float:
        cfg = getattr(self.population, "config", None)
        if cfg is not None and hasattr(cfg, "redshift"):
            return float(cfg.redshift.high)
        return float(np.max(self.population.draw_table(4096, 0)["redshift"]))

    # ---------------------------------------------------------------------------------------
    def _distance_ratio(self, z_lens: float, z_source):
        """``D_ls / D_s`` [dimensionless] for the cluster at ``z_lens``."""
        _, d_s, d_ls = cosmo.angular_diameter_distances(z_lens, z_source, self.cosmology)
        return np.asarray(d_ls) / np.asarray(d_s)

    def members_lens(self, scene: ClusterScene, z_source: float) -> MassProfile:
        """The galaxies of ``scene`` for a source at ``z_source``: the members as
        ``members.profile`` plus, with ``bcg.enabled``, the BCG as ``bcg.profile``."""
        return self._galaxies(scene, z_source)[0]

    def bcg_index(self, scene: ClusterScene) -> int | None:
        """Row of the BCG among the members: the one flagged ``is_bcg``, else the most
        massive member within ``bcg.max_offset`` of the centre; ``None`` if none."""
        if scene.is_bcg is not None:
            rows = np.flatnonzero(scene.is_bcg)
            return int(rows[0]) if rows.size else None
        near = np.flatnonzero(np.hypot(scene.x, scene.y) <= self.config.bcg.max_offset)
        if not near.size:
            return None
        return int(near[np.argmax(scene.stellar_mass[near])])

    def _galaxies(self, scene: ClusterScene, z_source: float):
        """``(galaxies profile, params)``: members (and BCG) for a source at ``z_source``."""
        mcfg, bcfg = self.config.members, self.config.bcg
        keep = scene.stellar_mass >= mcfg.min_stellar_mass
        bcg = self.bcg_index(scene) if self._bcg_cls is not None else None
        if bcg is not None:
            keep[bcg] = False
        parts, info = [], {"members_n_mass": int(keep.sum())}
        common = {"cosmology": self.cosmology}
        if keep.any():
            sigma = np.atleast_1d(
                cosmo.velocity_dispersion(scene.stellar_mass[keep], relation=mcfg.velocity_relation)
            )
            x2 = (sigma / mcfg.sigma_star) ** 2
            members = self._member_cls.from_sigma(
                sigma,
                scene.x[keep],
                scene.y[keep],
                scene.z_lens,
                z_source,
                q=scene.q[keep],
                phi=scene.phi[keep],
                r_core_kpc=mcfg.r_core_star_kpc * x2,
                r_cut_kpc=mcfg.r_cut_star_kpc * x2,
                **common,
            )
            parts.append(members)
            theta = getattr(members, "theta_e", None)
            info["members_theta_e_max_zref"] = float(np.max(theta)) if theta is not None else 0.0
        else:
            info["members_theta_e_max_zref"] = 0.0
        if bcg is not None:
            sigma_b = float(
                cosmo.velocity_dispersion(scene.stellar_mass[bcg], relation=bcfg.velocity_relation)
            )
            x2 = (sigma_b / mcfg.sigma_star) ** 2
            core = mcfg.r_core_star_kpc * x2 if bcfg.r_core_kpc is None else bcfg.r_core_kpc
            cut = mcfg.r_cut_star_kpc * x2 if bcfg.r_cut_kpc is None else bcfg.r_cut_kpc
            core = min(core, 0.5 * cut)
            bcg_lens = self._bcg_cls.from_sigma(
                np.array([sigma_b]),
                scene.x[bcg : bcg + 1],
                scene.y[bcg : bcg + 1],
                scene.z_lens,
                z_source,
                q=scene.q[bcg : bcg + 1],
                phi=scene.phi[bcg : bcg + 1],
                r_core_kpc=core,
                r_cut_kpc=cut,
                **common,
            )
            parts.append(bcg_lens)
            theta = getattr(bcg_lens, "theta_e", None)
            info.update(
                bcg_sigma=sigma_b,
                bcg_r_cut_kpc=float(cut),
                bcg_theta_e_zref=float(np.max(theta)) if theta is not None else 0.0,
            )
        if not parts:  # no galaxy carries mass: one massless SIE keeps the maps uniform
            parts.append(SIEPopulation(0.0, 1.0, 0.0, 0.0, 0.0))
        galaxies = parts[0] if len(parts) == 1 else Composite(parts)
        return galaxies, info

    def halo_mass_fraction(self, scene: ClusterScene, galaxies: MassProfile, z_source: float):
        """``(f, M_galaxies)``: the halo's share of M500 under ``halo.mass_budget``
        (:func:`mass_budget`), ``(1, 0)`` without it."""
        if not self.config.halo.mass_budget:
            return 1.0, 0.0
        return mass_budget(scene.m500, galaxies, scene.z_lens, z_source, cosmology=self.cosmology)

    def draw_halo(
        self,
        scene: ClusterScene,
        rng: np.random.Generator,
        z_source: float,
        *,
        c_mean=None,
        mass_fraction: float = 1.0,
    ):
        """One halo realisation: ``(halo.profile at z_source, params)``; its normalisation
        is ``mass_fraction`` of the M500 halo's (the mass budget)."""
        h = self.config.halo
        lo, hi = h.q_range
        q = h.q_mean
        for _ in range(1000):
            q = rng.normal(h.q_mean, h.q_sigma) if h.q_sigma > 0 else h.q_mean
            if lo <= q <= hi:
                break
        q = float(min(max(q, lo), hi))
        phi = float(rng.uniform(*h.phi_range))
        if c_mean is None:
            c_mean = self._mean_concentration(scene)
        c = float(c_mean * 10.0 ** (rng.normal(0.0, h.concentration_scatter_dex)))
        halo = self._halo_cls.from_m500(
            scene.m500, scene.z_lens, z_source, q, phi, cosmology=self.cosmology, c500c=c
        )
        if mass_fraction != 1.0:
            halo = halo.scaled(mass_fraction)
        params = {"halo_q": q, "halo_phi": phi, "halo_c500c": c, "halo_c500c_mean": c_mean}
        return halo, params

    def _mean_concentration(self, scene) -> float:
        return cosmo.nfw_halo(
            scene.m500,
            scene.z_lens,
            cosmology=self.cosmology,
            concentration_model=self.config.halo.concentration_model,
        ).c500c

    def _check_scene(self, scene):
        if not isinstance(scene, ClusterScene):
            raise ParameterError(
                "The 'scene' parameter of MockLensSimulator.simulate must be a ClusterScene. "
                f"Got {type(scene).__name__} instead."
            )
        n = scene.image.shape[1]
        if n < self.crop or (n - self.crop) % 2:
            raise ParameterError(
                f"The cutout of ClusterScene must be at least the crop ({self.crop} pixels) and "
                f"differ from it by an even number of pixels. Got shape {scene.image.shape}."
            )
        cond = scene.conditions
        if cond is not None and abs(cond.pixel_scale - self.conditions.pixel_scale) > 1e-9:
            raise ParameterError(
                f"The conditions of ClusterScene must have the simulator's pixel scale "
                f"{self.conditions.pixel_scale} arcsec. Got {cond.pixel_scale}."
            )
        if scene.z_lens >= self.z_ref - _MIN_SOURCE_BEHIND:
            raise LensRejected(
                f"The cluster at z = {scene.z_lens} lies behind the source population "
                f"(z <= {self.z_ref}).",
                "einstein_radius",
            )

    def crop_cutout(self, image) -> np.ndarray:
        """The centred ``crop_size`` square of a ``(3, N, N)`` cutout."""
        n = image.shape[1]
        a = (n - self.crop) // 2
        return np.ascontiguousarray(image[:, a : a + self.crop, a : a + self.crop])

    # ---------------------------------------------------------------------------------------
    def lens_maps(self, scene: ClusterScene, rng: np.random.Generator):
        """Yield ``(LensMaps at z_ref, halo params)`` for successive halo draws of a cluster."""
        members, info = self._galaxies(scene, self.z_ref)
        fraction, m_gal = self.halo_mass_fraction(scene, members, self.z_ref)
        info.update(halo_mass_fraction=fraction, galaxies_mass=m_gal)
        xf, yf = self._x.ravel(), self._y.ravel()
        mh = members._hessian(xf, yf)
        c_mean = self._mean_concentration(scene)
        cache = {}

        def member_deflection():  # computed once per cluster, only if a halo is accepted
            if "d" not in cache:
                cache["d"] = members._deflection(xf, yf)
            return cache["d"]

        while True:
            halo, hp = self.draw_halo(scene, rng, self.z_ref, c_mean=c_mean, mass_fraction=fraction)
            hp.update(info)
            maps = LensMaps(
                halo,
                members,
                self._x,
                self._y,
                self.conditions.pixel_scale,
                members_hessian=mh,
                members_deflection=member_deflection,
            )
            yield maps, hp

    def einstein_radius(
        self, scene: ClusterScene, z_source: float, seed=None, *, grid=None
    ) -> float:
        """Effective Einstein radius [arcsec] of one halo draw of ``scene``'s lens (halo,
        members and BCG as configured, mass budget applied) for a source at ``z_source``.

        ``sqrt(A / pi)`` of the tangential critical region around the centre on the
        simulator's grid (:meth:`LensMaps.einstein_radius`); a lower bound when that region
        reaches the grid's edge.  ``grid = (n, pixel_scale)`` evaluates it on an ``n x n``
        grid of that pixel scale [arcsec] instead.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        z_s = check_scalar(z_source, "z_source", "MockLensSimulator.einstein_radius")
        if z_s <= scene.z_lens:
            raise ParameterError(
                "The 'z_source' parameter of MockLensSimulator.einstein_radius must be larger "
                f"than the scene's z_lens ({scene.z_lens}). Got {z_s} instead."
            )
        galaxies, _ = self._galaxies(scene, z_s)
        fraction, _ = self.halo_mass_fraction(scene, galaxies, z_s)
        halo, _ = self.draw_halo(scene, rng, z_s, mass_fraction=fraction)
        if grid is None:
            x, y, scale = self._x, self._y, self.conditions.pixel_scale
        else:
            n, scale = int(grid[0]), float(grid[1])
            x, y = pixel_grid(n, scale)
        return LensMaps(halo, galaxies, x, y, scale).einstein_radius(1.0)

    def simulate(self, scene: ClusterScene, seed=None, *, stats: dict | None = None) -> MockResult:
        """Make one accepted mock lens from ``scene``.

        Parameters
        ----------
        scene : ClusterScene
        seed : numpy.random.Generator, int or None
            The same seed and scene give the same mock.
        stats : dict, optional
            Counters updated in place: ``halo_draws``, ``halo_rejected`` (Einstein radius
            below the minimum at every source redshift), ``source_draws``,
            ``placement_failed``, ``snr_rejected``, ``visibility_rejected`` (no pixel group
            above the noise, :attr:`SelectionConfig.min_visible_pixels`).

        Raises
        ------
        LensRejected
            When no accepted mock is found within ``selection.max_halo_draws`` halo draws of
            ``selection.max_source_draws`` sources each.
        """
        self._check_scene(scene)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        stats = {} if stats is None else stats
        for k in (
            "halo_draws",
            "halo_rejected",
            "source_draws",
            "placement_failed",
            "snr_rejected",
            "visibility_rejected",
        ):
            stats.setdefault(k, 0)
        sel = self.config.selection
        reason = "einstein_radius"
        maps_iter = self.lens_maps(scene, rng)
        for _ in range(sel.max_halo_draws):
            maps, halo_params = next(maps_iter)
            stats["halo_draws"] += 1
            s_min = maps.scale_for_radius(sel.min_einstein_radius)
            if s_min is None:
                stats["halo_rejected"] += 1
                continue
            result, reason = self._sources(scene, maps, halo_params, s_min, rng, stats)
            if result is not None:
                return result
        raise LensRejected(
            f"No accepted mock from cluster {scene.cluster_id!r} (z = {scene.z_lens:.3f}, "
            f"M500 = {scene.m500:.3g} Msun) in {sel.max_halo_draws} halo draws: {reason}.",
            reason,
        )
