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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from astropy.cosmology import FlatLambdaCDM
from scipy import ndimage

from clusterlens import cosmology as cosmo
from clusterlens._validation import check_scalar
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.lensing import pixel_grid
from clusterlens.mock._kernels import placement_candidates, summed_hessian
from clusterlens.mock.config import MockConfig
from clusterlens.observe import SurveyConditions, add_arc_noise, convolve, inject
from clusterlens.observe.noise import _snr_and_visible
from clusterlens.observe.photometry import nanomaggies_to_mag
from clusterlens.profiles import SIEPopulation, get_profile
from clusterlens.profiles.base import Composite, MassProfile
from clusterlens.sources import BANDS, Sersic, SourcePopulation, StructuredSource

__all__ = [
    "ClusterScene",
    "MockResult",
    "LensRejected",
    "MockLensSimulator",
    "LensMaps",
    "observation_params",
    "mass_budget",
]

# Sources are drawn at least this far behind the cluster (a lens at the source's redshift
# deflects nothing).
_MIN_SOURCE_BEHIND = 0.05
_EIGHT = np.ones((3, 3), dtype=bool)
_MEMBER_COLUMNS = ("x", "y", "stellar_mass", "q", "phi")
_RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0
# The halo keeps at least this fraction of M500 whatever the galaxies weigh (an SIE's mass
# inside R500 can exceed the cluster's).
_MIN_HALO_FRACTION = 0.05


def mass_budget(m500, galaxies, z_lens, z_source, *, cosmology=None):
    """The fraction of M500 left to the halo once the galaxies' mass is taken out.

    The galaxies' mass is the sum over ``galaxies`` (a profile or a
    :class:`~clusterlens.profiles.Composite` of populations built for ``z_source``) of
    ``mass_3d(R500)``: each galaxy's 3D mass inside a sphere of radius R500 about its own
    centre (for a dPIE with r_cut << R500 nearly its total mass, ``pi sigma^2 r_cut / G``).
    The galaxies of a cutout lie inside R500 in projection and are counted whole.  The halo
    built for the full M500 is then scaled by ``f = 1 - M_galaxies / M500`` (at least
    0.05): its 3D mass inside R500 becomes ``f M500``, and halo + galaxies hold M500.

    Parameters
    ----------
    m500 : float
        M500c [Msun].
    galaxies : MassProfile
        Parts with a ``mass_3d(radius_arcsec)`` method (units of Sigma_cr arcsec^2):
        :class:`~clusterlens.profiles.DPIEPopulation`, :class:`~clusterlens.profiles.DPIE`,
        the SIE classes.
    z_lens, z_source : float
    cosmology : astropy.cosmology.Cosmology, optional

    Returns
    -------
    fraction : float
        ``f`` in [0.05, 1].
    m_galaxies : float
        The galaxies' mass inside R500 [Msun].
    """
    parts = galaxies.components if isinstance(galaxies, Composite) else (galaxies,)
    missing = [type(p).__name__ for p in parts if not hasattr(p, "mass_3d")]
    if missing:
        raise ParameterError(
            f"halo.mass_budget needs galaxy profiles with a mass_3d(radius) method; {missing} "
            "has none (choose members.profile = 'dpie' or set halo.mass_budget = false)."
        )
    d_d, d_s, d_ds = (
        float(d) for d in cosmo.angular_diameter_distances(z_lens, z_source, cosmology)
    )
    r500_arcsec = float(cosmo.r500(m500, z_lens, cosmology)) / d_d * _RAD_TO_ARCSEC
    # Sigma_cr D_d^2 per arcsec^2 (cosmology.sigma_crit_arcsec2, without its second
    # distance computation: this runs once per cluster)
    unit = cosmo._C2_OVER_4PIG * d_s / (d_d * d_ds) * (d_d / _RAD_TO_ARCSEC) ** 2
    m_gal = unit * sum(float(p.mass_3d(r500_arcsec)) for p in parts)
    return max(1.0 - m_gal / float(m500), _MIN_HALO_FRACTION), m_gal


def _resolve(name: str, key: str, method: str):
    """The registered class ``name`` (or its ``population_class``) if it offers ``method``."""
    try:
        cls = get_profile(name)
    except ParameterError as exc:
        raise ParameterError(f"{key} = {name!r} is not a registered profile: {exc}") from None
    cls = getattr(cls, "population_class", cls)
    if not callable(getattr(cls, method, None)):
        raise ParameterError(
            f"{key} = {name!r} ({cls.__module__}.{cls.__qualname__}) cannot be used by the "
            f"simulator: it needs a classmethod {method}(...) (see docs/profiles.md)."
        )
    return cls


def observation_params(conditions: SurveyConditions) -> dict:
    """A field's observing conditions as flat params: ``psf_fwhm_g/r/z`` [arcsec],
    ``psf_beta`` (NaN for Gaussian PSFs) and ``depth_g/r/z`` [AB]."""
    out = {f"psf_fwhm_{b}": float(f) for b, f in zip(BANDS, conditions.psf_fwhm, strict=True)}
    out["psf_beta"] = float(conditions.beta)
    out.update({f"depth_{b}": float(d) for b, d in zip(BANDS, conditions.depth, strict=True)})
    return out


class LensRejected(ClusterlensError):
    """No accepted mock could be made from this cluster within the configured draws.

    Attributes
    ----------
    reason : str
        ``"einstein_radius"`` (the lens never reaches the minimum), ``"placement"`` (no
        high-magnification pixel in the crop) or ``"arc_snr"`` (arcs too faint).
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ClusterScene:
    """One cluster to lens: its cutout and the inputs of its mass model.

    Parameters
    ----------
    image : array_like, shape ``(3, N, N)``
        The cluster cutout [nanomaggies], bands g, r, z, centred on the BCG (the lens
        centre), ``x`` with the column and ``y`` with the row index.
    z_lens : float
        Cluster (BCG) redshift.
    m500 : float
        M500c [Msun, no h].
    x, y : array_like
        Member positions [arcsec] relative to the cutout centre.
    stellar_mass : array_like
        Member stellar masses [Msun].
    q, phi : array_like
        Member axis ratios in (0, 1] and position angles [deg, CCW from +x].
    cluster_id : int or str, optional
    conditions : SurveyConditions, optional
        This field's PSFs and depth (drawn per field by the synthetic sky, measured or read
        from the catalog for a real cutout); the arc is convolved, given shot noise and
        S/N-tested with them.  ``None``: the simulator's nominal conditions
        (``config.observation.nominal``).
    is_bcg : array_like of bool, optional
        Flags the BCG among the members (for ``[bcg]``); ``None``: the simulator takes the
        most massive member within ``bcg.max_offset`` of the centre.
    """

    image: np.ndarray
    z_lens: float
    m500: float
    x: np.ndarray
    y: np.ndarray
    stellar_mass: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    cluster_id: object = None
    conditions: SurveyConditions | None = None
    is_bcg: np.ndarray | None = None

    def __post_init__(self):
        o, s = "ClusterScene", object.__setattr__
        if self.conditions is not None and not isinstance(self.conditions, SurveyConditions):
            raise ParameterError(
                f"The 'conditions' parameter of {o} must be a SurveyConditions or None. "
                f"Got {type(self.conditions).__name__} instead."
            )
        try:
            img = np.asarray(self.image, dtype=np.float32)
        except (TypeError, ValueError):
            raise ParameterError(f"The 'image' parameter of {o} must be a numeric array.") from None
        if img.ndim != 3 or img.shape[0] != 3:
            raise ParameterError(
                f"The 'image' parameter of {o} must have shape (3, N, N) (bands g, r, z). "
                f"Got shape {img.shape} instead (wrong band count or dimensions)."
            )
        if img.shape[1] != img.shape[2]:
            raise ParameterError(
                f"The 'image' parameter of {o} must be square (3, N, N). Got {img.shape}."
            )
        s(self, "image", img)
        s(self, "z_lens", check_scalar(self.z_lens, "z_lens", o, low=0.0, low_inclusive=False))
        s(self, "m500", check_scalar(self.m500, "m500", o, low=1e10, high=1e17))
        arrays = {}
        for name in _MEMBER_COLUMNS:
            a = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                raise ParameterError(
                    f"The member column {name!r} of {o} holds NaN/inf at row {int(bad[0])} "
                    f"({bad.size} bad rows). Clean the member table first."
                )
            arrays[name] = a
        n = {a.size for a in arrays.values()}
        if len(n) != 1:
            sizes = {k: v.size for k, v in arrays.items()}
            raise ParameterError(f"The member columns of {o} must have one length. Got {sizes}.")
        if (arrays["stellar_mass"] <= 0).any():
            row = int(np.flatnonzero(arrays["stellar_mass"] <= 0)[0])
            raise ParameterError(
                f"The member column 'stellar_mass' of {o} must be > 0 Msun. Row {row} is "
                f"{arrays['stellar_mass'][row]}."
            )
        bad_q = (arrays["q"] <= 0) | (arrays["q"] > 1)
        if bad_q.any():
            row = int(np.flatnonzero(bad_q)[0])
            raise ParameterError(
                f"The member column 'q' of {o} must be in (0, 1]. Row {row} is {arrays['q'][row]}."
            )
        for k, v in arrays.items():
            s(self, k, v)
        if self.is_bcg is not None:
            flags = np.atleast_1d(np.asarray(self.is_bcg, dtype=bool))
            if flags.shape != arrays["x"].shape:
                raise ParameterError(
                    f"The 'is_bcg' parameter of {o} must have one flag per member "
                    f"({arrays['x'].size}). Got shape {flags.shape} instead."
                )
            s(self, "is_bcg", flags)

    @property
    def n_members(self) -> int:
        return int(self.x.size)

    @classmethod
    def from_members_table(cls, image, members, *, z_lens, m500, cluster_id=None, conditions=None):
        """From a member Table with columns ``x, y, stellar_mass, q, phi`` and optionally
        ``is_bcg`` (e.g.
        :attr:`clusterlens.fields.SyntheticField.members` or
        :meth:`clusterlens.survey.ClusterInputs.members_table`)."""
        missing = [c for c in _MEMBER_COLUMNS if c not in members.colnames]
        if missing:
            raise ParameterError(
                f"The member table lacks the column(s) {missing}; it needs {_MEMBER_COLUMNS}."
            )
        cols = {
            c: np.asarray(getattr(members[c], "value", members[c]), float) for c in _MEMBER_COLUMNS
        }
        is_bcg = np.asarray(members["is_bcg"], bool) if "is_bcg" in members.colnames else None
        return cls(
            image, z_lens, m500, cluster_id=cluster_id, conditions=conditions, is_bcg=is_bcg, **cols
        )


@dataclass(frozen=True)
class MockResult:
    """One accepted mock lens.

    Attributes
    ----------
    image : ndarray, float32, ``(3, crop, crop)``
        The cluster's cropped cutout plus the observed arc [nanomaggies].
    arc : ndarray, float32, ``(3, crop, crop)``
        The noiseless, PSF-convolved arc [nanomaggies].
    cutout : ndarray, float32, ``(3, crop, crop)``
        The cropped cutout without the arc.
    lens : MassProfile
        Halo + members scaled to the source redshift.
    source : Sersic or StructuredSource
        The source (source-plane position in arcsec); a StructuredSource when it has clumps.
    member_xy : ndarray, ``(n_members, 2)``
        Member positions [arcsec] (for Figure 1's crosses).
    params : dict
        Every parameter as a flat dict of scalars (see ``docs/mock.md``).
    second_source : Sersic or StructuredSource or None
        A second source at another redshift (``params["second_source_redshift"]``) whose
        images are part of ``arc``; ``lens`` is scaled to the first source only.
    """

    image: np.ndarray
    arc: np.ndarray
    cutout: np.ndarray
    lens: MassProfile
    source: Sersic | StructuredSource
    member_xy: np.ndarray
    params: dict = field(default_factory=dict)
    second_source: Sersic | StructuredSource | None = None


class LensMaps:
    """Deflection and Hessian maps of one lens at the reference source redshift.

    Parameters
    ----------
    halo, members : MassProfile
        Evaluated at ``z_ref``.
    x, y : ndarray, shape ``(n, n)``
        Pixel centres [arcsec].
    pixel_scale : float
    members_hessian : tuple of ndarray, optional
        Precomputed flat member Hessian (shared by every halo draw of a cluster).
    members_deflection : callable, optional
        Returns the flat member deflection (computed once, shared likewise).
    """

    def __init__(
        self, halo, members, x, y, pixel_scale, *, members_hessian=None, members_deflection=None
    ):
        self.halo, self.members = halo, members
        self.x, self.y, self.pixel_scale = x, y, pixel_scale
        self.shape = x.shape
        xf, yf = x.ravel(), y.ravel()
        self._xf, self._yf = xf, yf
        mh = members_hessian if members_hessian is not None else members._hessian(xf, yf)
        self._members_deflection = members_deflection
        hh = halo._hessian(xf, yf)
        fxx, fxy, fyy, kpg = (np.empty(xf.size) for _ in range(4))
        # f = halo + galaxies and kappa + gamma in one pass
        summed_hessian(*(np.ascontiguousarray(a, dtype=np.float64) for a in (*hh, *mh)),
                       fxx, fxy, fyy, kpg)  # fmt: skip
        self.fxx, self.fxy, self.fyy = (v.reshape(self.shape) for v in (fxx, fxy, fyy))
        self.kappa_plus_gamma = kpg.reshape(self.shape)
        self._deflection = None
        self._region = None
        c = (self.shape[0] // 2, self.shape[1] // 2)
        self._centre = c

    @property
    def deflection(self):
        """``(alpha_x, alpha_y)`` maps [arcsec] at ``z_ref``."""
        if self._deflection is None:
            md = self._members_deflection
            md = self.members._deflection(self._xf, self._yf) if md is None else md()
            hd = self.halo._deflection(self._xf, self._yf)
            self._deflection = tuple(
                (a + b).reshape(self.shape) for a, b in zip(hd, md, strict=True)
            )
        return self._deflection

    def ray_trace(self, s: float):
        """``(x, y) -> beta`` for flat arrays, at deflection scale ``s``."""
        halo, members = self.halo, self.members

        def trace(x, y):
            hx, hy = halo._deflection(x, y)
            mx, my = members._deflection(x, y)
            return x - s * (hx + mx), y - s * (hy + my)

        return trace

    def _box(self):
        """The region at ``s = 1`` (the largest: regions shrink with ``s``), cut to its
        bounding box, so that smaller ``s`` only label a small array."""
        if self._region is None:
            inside = self.kappa_plus_gamma > 1.0
            c = self._centre
            if not inside[c]:
                self._region = (np.zeros((1, 1)), (0, 0))
            else:
                labels, _ = ndimage.label(inside, structure=_EIGHT)
                comp = labels == labels[c]
                sl = ndimage.find_objects(comp.astype(np.int32))[0]
                kg = np.where(comp[sl], self.kappa_plus_gamma[sl], 0.0)
                self._region = (kg, (c[0] - sl[0].start, c[1] - sl[1].start))
        return self._region

    def _area(self, s: float) -> int:
        kg, c = self._box()
        inside = kg * s > 1.0
        if not inside[c]:
            return 0
        labels, _ = ndimage.label(inside, structure=_EIGHT)
        return int(np.count_nonzero(labels == labels[c]))

    def tangential_region(self, s: float) -> np.ndarray:
        """Boolean map of the region around the centre inside the tangential critical curve
        at deflection scale ``s``: ``s (kappa + gamma) > 1`` (``lambda_t < 0``), 8-connected to
        the central pixel."""
        inside = self.kappa_plus_gamma * s > 1.0
        if not inside[self._centre]:
            return np.zeros_like(inside)
        labels, _ = ndimage.label(inside, structure=_EIGHT)
        return labels == labels[self._centre]

    def truncated(self, s: float) -> bool:
        """Whether the critical region at scale ``s`` reaches the edge of the maps (its
        Einstein radius is then a lower bound)."""
        r = self.tangential_region(s)
        return bool(r[0].any() or r[-1].any() or r[:, 0].any() or r[:, -1].any())

    def einstein_radius(self, s: float) -> float:
        """Effective Einstein radius [arcsec] ``sqrt(area / pi)`` at deflection scale ``s``
        (``s <= 1``; the area is counted in pixels)."""
        return math.sqrt(self._area(min(s, 1.0)) * self.pixel_scale**2 / math.pi)

    def scale_for_radius(self, theta_min: float) -> float | None:
        """Smallest deflection scale ``s`` in (0, 1] whose Einstein radius reaches
        ``theta_min`` [arcsec], or ``None`` if even ``s = 1`` does not.

        The region at ``s`` is a connected part of ``{kappa + gamma > 1/s}``, so its area is at
        most the number of such pixels: with ``t_n`` the n-th largest value of
        ``kappa + gamma`` (n pixels make ``theta_min``), ``s >= 1 / t_n``.  That bound is the
        answer whenever those n pixels are connected to the centre (one labelling); otherwise
        bisection (to 1e-4) between it and 1."""
        n = max(1, math.ceil(math.pi * theta_min**2 / self.pixel_scale**2))
        if self._area(1.0) < n:
            return None
        kg, _ = self._box()
        values = kg.ravel()
        t_n = float(np.partition(values, values.size - n)[values.size - n])
        lo = float(np.nextafter(1.0 / t_n, 2.0))  # area(lo) counts every pixel above t_n
        if self._area(lo) >= n:
            return lo
        hi = 1.0
        while hi - lo > 1e-4:
            mid = 0.5 * (lo + hi)
            if self._area(mid) >= n:
                hi = mid
            else:
                lo = mid
        return hi


def _arc_measures(sim, scene, arc_clean) -> dict:
    """``arc_radius`` [arcsec] and ``arc_surface_brightness`` [AB mag / arcsec^2, r] of the
    noiseless arc (:func:`clusterlens.mock.report.measure_arc`) at the scene's sky noise."""
    from clusterlens.mock.report import measure_arc

    pick = getattr(sim, "scene_conditions", None)  # per-field conditions, where the sim has them
    conditions = sim.conditions if pick is None else pick(scene)
    m = measure_arc(arc_clean, conditions.sky_sigma, conditions.pixel_scale)
    return {"arc_radius": m["arc_radius"], "arc_surface_brightness": m["arc_surface_brightness"]}


class MockLensSimulator:
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

    def _min_source_redshift(self, z_lens, s_min):
        """Lowest source redshift whose distance ratio reaches ``s_min`` of the reference."""
        zs, ratio, ratio_ref = self._ratio_table(z_lens)
        z_needed = float(np.interp(s_min, ratio, zs))
        return max(z_needed, z_lens + _MIN_SOURCE_BEHIND), ratio_ref

    def _ratio_table(self, z_lens):
        """``(z, D_ls/D_s over its z_ref value, D_ls/D_s at z_ref)`` on 256 source redshifts
        for a cluster at ``z_lens``; kept for the last cluster (every halo draw of a cluster
        asks for the same table)."""
        cached = self._last_ratio_table
        if cached is None or cached[0] != z_lens:
            zs = np.linspace(z_lens + 1e-3, self.z_ref, 256)
            ref = self._distance_ratio(z_lens, self.z_ref)
            cached = (z_lens, (zs, self._distance_ratio(z_lens, zs) / ref, float(ref)))
            self._last_ratio_table = cached
        return cached[1]

    def _sources(self, scene, maps, halo_params, s_min, rng, stats):
        cfg = self.config
        z_min, ratio_ref = self._min_source_redshift(scene.z_lens, s_min)
        if z_min >= self.z_ref - 1e-6:
            stats["halo_rejected"] += 1
            return None, "einstein_radius"
        reason = "placement"
        for _ in range(cfg.selection.max_source_draws):
            stats["source_draws"] += 1
            row = self._draw_source_row(rng, z_min)
            z_s = float(row["redshift"])
            s = float(self._distance_ratio(scene.z_lens, z_s)) / ratio_ref
            theta_e = maps.einstein_radius(s)
            if theta_e < cfg.selection.min_einstein_radius:  # interpolation edge: redraw
                continue
            centre = self._place(maps, s, theta_e, rng)
            if centre is None:
                stats["placement_failed"] += 1
                reason = "placement"
                continue
            (bx0, by0), mu_pix = centre
            source = self._make_source(row, bx0, by0)
            second = self._second_source(scene, maps, z_min, ratio_ref, rng)
            result = self._render(scene, maps, s, source, rng, extra=second)
            arc_noisy, arc_clean, raw_total = result
            # arc_snr and visible_pixels in one pass over the arc
            snr, visible = _snr_and_visible(
                arc_clean, self.scene_conditions(scene), cfg.selection.visible_pixel_sigma
            )
            snr_total = float(np.sqrt(np.sum(snr**2)))
            if snr_total < cfg.selection.min_arc_snr:
                stats["snr_rejected"] += 1
                reason = "arc_snr"
                continue
            n_visible = int(visible.max())
            if n_visible < cfg.selection.min_visible_pixels:
                stats["visibility_rejected"] += 1
                reason = "arc_visibility"
                continue
            draw = {
                "s": s,
                "z_s": z_s,
                "row": row,
                "source": source,
                "second": second,
                "arc_noisy": arc_noisy,
                "arc_clean": arc_clean,
                "raw_total": raw_total,
                "theta_e": theta_e,
                "mu_pix": mu_pix,
                "snr": snr,
                "snr_total": snr_total,
                "n_visible": n_visible,
            }
            return self._result(scene, maps, draw, halo_params), "accepted"
        return None, reason

    def _draw_source_row(self, rng, z_min):
        """One source of the population behind ``z_min``: ``draw_table(1, ...)[0]``, or the
        population's cheaper ``_draw_row`` (the same values) where it has one."""
        draw_row = getattr(self.population, "_draw_row", None)
        if draw_row is not None:
            return draw_row(rng, min_redshift=z_min)
        return self.population.draw_table(1, rng, min_redshift=z_min)[0]

    def _make_source(self, row, x, y):
        """The light profile of a drawn row at source-plane position ``(x, y)`` [arcsec]."""
        make = getattr(self.population, "make_source", None)
        if make is not None:
            return make(row, x=x, y=y)
        return Sersic.from_magnitudes(
            [row["mag_g"], row["mag_r"], row["mag_z"]],
            x=x,
            y=y,
            r_e=float(row["r_e"]),
            n=float(row["n"]),
            q=float(row["q"]),
            phi=float(row["phi"]),
        )

    def _second_source(self, scene, maps, z_min, ratio_ref, rng):
        """With ``source.second_source_probability``: ``{"row", "source", "s", "theta_e",
        "mu_pix"}`` of a second source at its own redshift (placed behind its own
        high-magnification region), else ``None``.  No random number is drawn when the
        probability is 0 (the paper preset)."""
        p = getattr(self.config.source, "second_source_probability", 0.0)
        if p <= 0.0 or rng.uniform() >= p:
            return None
        row = self._draw_source_row(rng, z_min)
        z2 = float(row["redshift"])
        s2 = float(self._distance_ratio(scene.z_lens, z2)) / ratio_ref
        theta_e2 = maps.einstein_radius(s2)
        if theta_e2 <= 0.0:
            return None
        centre = self._place(maps, s2, theta_e2, rng)
        if centre is None:
            return None
        (bx, by), mu = centre
        source = self._make_source(row, bx, by)
        return {"row": row, "source": source, "s": s2, "theta_e": theta_e2, "mu_pix": mu}

    def _place(self, maps: LensMaps, s: float, theta_e: float, rng):
        pcfg = self.config.placement
        m = self.margin
        # pixels of the crop with |mu| >= min_magnification on the tangential side within
        # max_radius Einstein radii (one pass, clusterlens.mock._kernels)
        idx, det, w = placement_candidates(
            maps.fxx, maps.fxy, maps.fyy, self._r, s, pcfg.min_magnification,
            pcfg.max_radius * theta_e, m, m + self.crop, pcfg.magnification_weight_cap,
        )  # fmt: skip
        if not idx.size:
            return None
        cap = pcfg.magnification_weight_cap
        if cap > 1.0:  # favour the pixels next to the critical curves
            pick = int(np.searchsorted(np.cumsum(w), rng.uniform(0.0, w.sum()), side="right"))
        else:
            pick = int(rng.integers(idx.size))
        k = int(idx[pick])
        det_k = float(det[pick])
        ax, ay = maps.deflection
        bx = self._x.flat[k] - s * ax.flat[k]
        by = self._y.flat[k] - s * ay.flat[k]
        mu = 1.0 / max(abs(det_k), 1e-12)
        # jitter within the pixel's source-plane footprint (pixel area / |mu|)
        half = 0.5 * self.conditions.pixel_scale / math.sqrt(mu)
        bx += rng.uniform(-half, half)
        by += rng.uniform(-half, half)
        return (float(bx), float(by)), float(mu)

    def _render_light(self, maps, s, source):
        """The lensed, noiseless, unconvolved light [nanomaggies] of one source at
        deflection scale ``s`` on the simulated box (body and clumps)."""
        from clusterlens.sources import render_sersic_adaptive

        ax, ay = maps.deflection
        icfg = self.config.image
        return render_sersic_adaptive(
            source,
            maps.ray_trace(s),
            shape=maps.shape,
            pixel_scale=self.conditions.pixel_scale,
            rtol=icfg.render_rtol,
            max_supersample=icfg.render_max_supersample,
            beta=(self._x - s * ax, self._y - s * ay),
        )

    def _render(self, scene, maps, s, source, rng, extra=None):
        arc = self._render_light(maps, s, source)
        raw_total = arc.sum(axis=(1, 2))  # the first source's lensed flux (magnification)
        if extra is not None:
            light2 = self._render_light(maps, extra["s"], extra["source"])
            extra["raw_total"] = light2.sum(axis=(1, 2))
            arc = arc + light2
        # the PSF sees the whole simulated box; only the kept pixels are convolved and noised
        cond = self.scene_conditions(scene)
        psfs = self._psfs if scene.conditions is None else cond.psfs
        clean = convolve(arc, psfs, pixel_scale=cond.pixel_scale, trim=self.margin)
        noisy = add_arc_noise(clean, cond, rng).astype(np.float32)
        return noisy, clean, raw_total

    def _result(self, scene, maps, draw: dict, halo_params: dict) -> MockResult:
        s, source, arc_clean = draw["s"], draw["source"], draw["arc_clean"]
        arc_noisy, snr, theta_e = draw["arc_noisy"], draw["snr"], draw["theta_e"]
        cutout = self.crop_cutout(scene.image)
        image = inject(cutout, arc_noisy)
        halo_s = maps.halo.scaled(s)
        members_s = maps.members.scaled(s)
        halo_params = dict(halo_params)
        for key in ("members_theta_e_max_zref", "bcg_theta_e_zref"):
            if key in halo_params:  # Einstein radii at the source's redshift
                halo_params[key.removesuffix("_zref")] = halo_params.pop(key) * s
        fluxes = np.asarray(source.fluxes)
        mags = source.magnitudes
        arc_flux = arc_clean.sum(axis=(1, 2))
        params = {
            "z_lens": scene.z_lens,
            "m500": scene.m500,
            "log_m500": math.log10(scene.m500),
            "n_members": scene.n_members,
            "members_log_mstar_total": float(np.log10(scene.stellar_mass.sum()))
            if scene.n_members
            else 0.0,
            **halo_params,
            "halo_rs": float(getattr(halo_s, "rs", math.nan)),
            "halo_alpha_rs": float(getattr(halo_s, "alpha_rs", math.nan)),
            "einstein_radius": theta_e,
            "einstein_radius_truncated": maps.truncated(s),
            "einstein_radius_zref": maps.einstein_radius(1.0),
            "z_ref": self.z_ref,
            "deflection_scale": s,
            "source_x": source.x,
            "source_y": source.y,
            "source_r_e": source.r_e,
            "source_n": source.n,
            "source_q": source.q,
            "source_phi": source.phi,
            **{f"source_mag_{b}": float(m) for b, m in zip(BANDS, mags, strict=True)},
            "source_redshift": draw["z_s"],
            "source_colour": str(draw["row"]["colour_class"]),
            **_source_row_params(draw["row"], source),
            **_second_source_params(draw.get("second")),
            "arc_visible_pixels": int(draw.get("n_visible", 0)),
            "magnification": float(draw["raw_total"].sum() / fluxes.sum()),
            "magnification_pixel": draw["mu_pix"],
            "arc_snr": draw["snr_total"],
            **{f"arc_snr_{b}": float(v) for b, v in zip(BANDS, snr, strict=True)},
            **{
                f"arc_mag_{b}": float(nanomaggies_to_mag(max(f, 1e-30)))
                for b, f in zip(BANDS, arc_flux, strict=True)
            },
            **_arc_measures(self, scene, arc_clean),
        }
        params.update(observation_params(self.scene_conditions(scene)))
        if scene.cluster_id is not None:
            params["cluster_id"] = str(scene.cluster_id)
        member_xy = np.stack([scene.x, scene.y], axis=1)
        return MockResult(
            image=image,
            arc=arc_clean.astype(np.float32),
            cutout=cutout,
            lens=halo_s + members_s,
            source=source,
            member_xy=member_xy,
            params=params,
            second_source=None if draw.get("second") is None else draw["second"]["source"],
        )


def visible_pixels(arc, conditions, k_sigma: float) -> int:
    """Pixels of the noiseless, PSF-convolved ``arc`` above ``k_sigma`` times their noise, in
    the band that has the most of them.

    A pixel's noise is ``sqrt(sigma_sky^2 + f / g)`` (the band's sky noise and the arc's own
    shot noise, :class:`~clusterlens.observe.SurveyConditions`), so the count says how many
    pixels of the arc stand out of the noise in at least one band.

    Parameters
    ----------
    arc : ndarray, ``(3, ny, nx)``
        Nanomaggies per pixel.
    conditions : SurveyConditions
    k_sigma : float
    """
    _, visible = _snr_and_visible(np.asarray(arc, dtype=np.float64), conditions, k_sigma)
    return int(visible.max())


def _row_value(row, name, default):
    try:
        return row[name]
    except (KeyError, ValueError, IndexError):
        return default


def _source_row_params(row, source) -> dict:
    """Source parameters beyond the body's Sérsic shape (SED, clumps) for the params table."""
    mags = source.magnitudes
    n_clumps = len(source.clumps) if isinstance(source, StructuredSource) else 0
    frac = float(source.clump_fraction[1]) if n_clumps else 0.0
    return {
        "source_g_minus_r": float(mags[0] - mags[1]),
        "source_r_minus_z": float(mags[1] - mags[2]),
        "source_uv_slope": float(_row_value(row, "uv_slope", np.nan)),
        "source_optical_slope": float(_row_value(row, "optical_slope", np.nan)),
        "source_balmer_break": float(_row_value(row, "balmer_break", np.nan)),
        "source_n_clumps": n_clumps,
        "source_clump_flux_fraction": frac,
    }


def _second_source_params(second) -> dict:
    """The second source's parameters (NaN / 0 without one: every mock has the columns)."""
    if second is None:
        return {
            "second_source": 0,
            "second_source_redshift": np.nan,
            "second_source_mag_r": np.nan,
            "second_source_x": np.nan,
            "second_source_y": np.nan,
            "second_source_n_clumps": 0,
            "second_source_magnification": np.nan,
            "second_source_deflection_scale": np.nan,
        }
    src = second["source"]
    return {
        "second_source": 1,
        "second_source_redshift": float(second["row"]["redshift"]),
        "second_source_mag_r": float(src.magnitudes[1]),
        "second_source_x": float(src.x),
        "second_source_y": float(src.y),
        "second_source_n_clumps": len(src.clumps) if isinstance(src, StructuredSource) else 0,
        "second_source_magnification": float(
            np.sum(second.get("raw_total", np.nan)) / np.sum(src.fluxes)
        ),
        "second_source_deflection_scale": float(second["s"]),
    }
