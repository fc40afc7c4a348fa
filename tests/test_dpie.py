"""The dPIE (truncated PIEMD) member profile: lenstronomy, analytic limits, masses, scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.profiles import (
    DPIE,
    ENFW,
    NFW,
    SIE,
    Composite,
    ConvergenceProfile,
    DPIEPopulation,
    EllipticalNFW,
    ScaledProfile,
    SIEPopulation,
    get_profile,
    member_radii,
)

lenstronomy = pytest.importorskip("lenstronomy")
from lenstronomy.LensModel.lens_model import LensModel  # noqa: E402
from lenstronomy.Util import param_util  # noqa: E402


def _points(n=400, half=25.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-half, half, n), rng.uniform(-half, half, n)


def _nie_pair(te, a, s, q, phi, x0, y0):
    """lenstronomy: the dPIE as s/(s - a) [NIE(core a) - NIE(core s)]."""
    e1, e2 = param_util.phi_q2_ellipticity(np.deg2rad(phi), q)
    f = s / (s - a)
    common = {"e1": e1, "e2": e2, "center_x": x0, "center_y": y0}
    kwargs = [
        {"theta_E": te * f, "s_scale": a, **common},
        {"theta_E": -te * f, "s_scale": s, **common},
    ]
    return LensModel(["NIE", "NIE"]), kwargs


@pytest.mark.parametrize(
    "te, a, s, q, phi, x0, y0",
    [
        (1.3, 0.2, 7.0, 0.6, 30.0, 1.0, -2.0),
        (0.5, 0.02, 3.0, 0.9, -75.0, -4.0, 6.0),
        (2.5, 0.8, 40.0, 0.35, 110.0, 0.0, 0.0),
    ],
)
def test_dpie_matches_difference_of_lenstronomy_nie(te, a, s, q, phi, x0, y0):
    x, y = _points()
    lens = DPIE(te, a, s, q, phi, x0, y0)
    model, kw = _nie_pair(te, a, s, q, phi, x0, y0)
    ax, ay = model.alpha(x, y, kw)
    mx, my = lens.deflection(x, y)
    np.testing.assert_allclose(mx, ax, atol=1e-12)
    np.testing.assert_allclose(my, ay, atol=1e-12)
    np.testing.assert_allclose(lens.convergence(x, y), model.kappa(x, y, kw), atol=2e-5)
    fxx, fxy, _, fyy = model.hessian(x, y, kw)
    hxx, hxy, hyy = lens.hessian(x, y)
    # lenstronomy's NIE Hessian is good to ~1e-5; ours is checked exactly below
    for ours, theirs in ((hxx, fxx), (hxy, fxy), (hyy, fyy)):
        np.testing.assert_allclose(ours, theirs, atol=5e-5)
    dpot = lens.potential(x, y) - model.potential(x, y, kw)
    assert np.ptp(dpot) < 1e-10  # equal up to a constant


def test_dpie_hessian_and_potential_are_derivatives():
    x, y = _points(200)
    lens = DPIE(1.1, 0.3, 9.0, 0.55, 40.0, 0.5, 0.2)
    h = 1e-5
    axp, ayp = lens.deflection(x + h, y)
    axm, aym = lens.deflection(x - h, y)
    bxp, byp = lens.deflection(x, y + h)
    bxm, bym = lens.deflection(x, y - h)
    hxx, hxy, hyy = lens.hessian(x, y)
    np.testing.assert_allclose(hxx, (axp - axm) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(hxy, (bxp - bxm) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(hyy, (byp - bym) / (2 * h), atol=1e-8)
    ax, ay = lens.deflection(x, y)
    dpx = (lens.potential(x + h, y) - lens.potential(x - h, y)) / (2 * h)
    dpy = (lens.potential(x, y + h) - lens.potential(x, y - h)) / (2 * h)
    np.testing.assert_allclose(dpx, ax, atol=1e-8)
    np.testing.assert_allclose(dpy, ay, atol=1e-8)


def test_spherical_dpie_matches_lenstronomy_pjaffe():
    x, y = _points()
    te, a, s = 1.7, 0.25, 12.0
    lens = DPIE(te, a, s, 1.0, 0.0, 0.7, -0.4)
    model = LensModel(["PJAFFE"])
    kw = [{"sigma0": te / (2 * a), "Ra": a, "Rs": s, "center_x": 0.7, "center_y": -0.4}]
    ax, ay = model.alpha(x, y, kw)
    mx, my = lens.deflection(x, y)
    np.testing.assert_allclose(mx, ax, atol=1e-12)
    np.testing.assert_allclose(my, ay, atol=1e-12)
    fxx, fxy, _, fyy = model.hessian(x, y, kw)
    hxx, hxy, hyy = lens.hessian(x, y)
    np.testing.assert_allclose(hxx, fxx, atol=1e-12)
    np.testing.assert_allclose(hxy, fxy, atol=1e-12)
    np.testing.assert_allclose(hyy, fyy, atol=1e-12)
    np.testing.assert_allclose(lens.convergence(x, y), model.kappa(x, y, kw), atol=1e-12)


@pytest.mark.parametrize("q", [1.0, 0.7, 0.4])
def test_dpie_tends_to_the_sie_of_the_same_theta_e(q):
    x, y = _points(300, half=10.0)
    sie = SIE(1.2, q, 25.0, 0.3, -0.1)
    dpie = DPIE(1.2, 0.0, 1e7, q, 25.0, 0.3, -0.1)
    for ours, theirs in zip(dpie.deflection(x, y), sie.deflection(x, y), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    for ours, theirs in zip(dpie.hessian(x, y), sie.hessian(x, y), strict=True):
        # the cut leaves a sheet of kappa ~ theta_E / (2 r_cut) ~ 6e-8
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=3e-7)
    # and truncation lowers the deflection far out
    far = DPIE(1.2, 0.0, 3.0, q, 25.0, 0.3, -0.1)
    r = np.array([40.0])
    assert np.hypot(*far.deflection(r, r)) < 0.2 * np.hypot(*sie.deflection(r, r))


def test_spherical_enclosed_mass_and_total_mass():
    te, a, s = 1.5, 0.4, 20.0
    lens = DPIE(te, a, s)
    radii = np.array([0.1, 1.0, 5.0, 20.0, 100.0])
    ax, _ = lens.deflection(radii, np.zeros_like(radii))
    # projected mass inside R (units Sigma_cr arcsec^2): pi R alpha(R) = 2 pi K [...]
    big_k = 0.5 * te * s / (s - a)
    m2d = 2 * math.pi * big_k * (np.hypot(a, radii) - a - np.hypot(s, radii) + s)
    np.testing.assert_allclose(math.pi * radii * ax, m2d, rtol=1e-12)
    # total mass pi theta_E r_cut, reached far out, and the 3D mass tends to it
    ax_far, _ = lens.deflection(np.array([1e6]), np.array([0.0]))
    assert math.pi * 1e6 * ax_far[0] == pytest.approx(lens.total_mass(), rel=1e-4)
    assert lens.total_mass() == pytest.approx(math.pi * te * s)
    assert lens.mass_3d(1e9) == pytest.approx(lens.total_mass(), rel=1e-6)
    assert lens.mass_3d(10.0) < lens.total_mass()


@pytest.mark.parametrize("q", [1.0, 0.6, 0.3])
def test_total_mass_does_not_depend_on_q(q):
    """Gauss: the integral of kappa equals half the flux of alpha through a large circle."""
    lens = DPIE(1.0, 0.1, 2.0, q, 30.0)
    t = np.linspace(0.0, 2 * np.pi, 4001)[:-1]
    big = 2e4
    ax, ay = lens.deflection(big * np.cos(t), big * np.sin(t))
    flux = np.mean(ax * np.cos(t) + ay * np.sin(t)) * 2 * np.pi * big
    assert 0.5 * flux == pytest.approx(lens.total_mass(), rel=1e-3)


def test_population_is_the_sum_of_its_members_and_fuses_with_a_halo():
    rng = np.random.default_rng(3)
    n = 12
    pop = DPIEPopulation(
        rng.uniform(0.1, 1.0, n),
        rng.uniform(0.0, 0.2, n),
        rng.uniform(1.0, 10.0, n),
        rng.uniform(0.3, 1.0, n),
        rng.uniform(-90, 90, n),
        rng.uniform(-20, 20, n),
        rng.uniform(-20, 20, n),
    )
    x, y = _points(500)
    total = sum(pop.members())
    for ours, theirs in zip(pop.deflection(x, y), total.deflection(x, y), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    for ours, theirs in zip(pop.hessian(x, y), total.hessian(x, y), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    halo = ENFW(30.0, 8.0, 0.7, 10.0)
    both = halo + pop
    hx, hy = halo.deflection(x, y)
    px, py = pop.deflection(x, y)
    bx, by = both.deflection(x, y)
    np.testing.assert_allclose(bx, hx + px, atol=1e-12)
    np.testing.assert_allclose(by, hy + py, atol=1e-12)
    assert pop.total_mass() == pytest.approx(sum(m.total_mass() for m in pop.members()))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"theta_e": 1.0, "r_core": 2.0, "r_cut": 1.0}, "r_cut"),
        ({"theta_e": 1.0, "r_core": 0.0, "r_cut": 0.0}, "r_cut"),
        ({"theta_e": -1.0, "r_core": 0.0, "r_cut": 1.0}, "theta_e"),
        ({"theta_e": 1.0, "r_core": -0.1, "r_cut": 1.0}, "r_core"),
        ({"theta_e": 1.0, "r_core": 0.0, "r_cut": 1.0, "q": 0.0}, "q"),
    ],
)
def test_dpie_bad_parameters(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        DPIE(**kwargs)
    with pytest.raises(ParameterError, match=name):
        DPIEPopulation(
            **{k: [v, v] for k, v in kwargs.items()},
            **{
                k: v
                for k, v in {"q": 1.0, "phi": 0.0, "x0": 0.0, "y0": 0.0}.items()
                if k not in kwargs
            },
        )


def test_member_radii_scale_as_sigma_squared():
    core, cut = member_radii([180.0, 360.0, 90.0])
    np.testing.assert_allclose(cut, [45.0, 180.0, 11.25])
    np.testing.assert_allclose(core, [0.15, 0.6, 0.0375])
    with pytest.raises(ParameterError, match="r_core_star"):
        member_radii([100.0], r_core_star=50.0, r_cut_star=40.0)


def test_from_sigma_total_mass_is_pi_sigma2_rcut_over_g():
    from astropy import units as u
    from astropy.constants import G

    from clusterlens import cosmology as cosmo

    sigma, z_l, z_s = np.array([180.0, 250.0]), 0.3, 1.5
    pop = DPIEPopulation.from_sigma(sigma, [0.0, 5.0], [0.0, 1.0], z_l, z_s)
    msun = pop.total_mass() * cosmo.sigma_crit_arcsec2(z_l, z_s)
    _, cut = member_radii(sigma)
    expected = np.sum(math.pi * (sigma * u.km / u.s) ** 2 * (cut * u.kpc) / G).to_value(u.Msun)
    assert msun == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1.065e12 + math.pi * 250.0**2 * 86.8 / 4.3009e-6, rel=0.01)


class _Disk(ConvergenceProfile):
    grid_half_width = 20.0
    grid_size = 64

    def _convergence(self, x, y):
        return 0.3 * np.exp(-0.5 * (x * x + y * y) / 4.0)


@pytest.mark.parametrize(
    "profile",
    [
        SIE(1.2, 0.7, 30.0, 1.0, 2.0),
        SIEPopulation([0.5, 1.0], 0.8, 10.0, [1.0, -3.0], [2.0, 0.0]),
        DPIE(1.0, 0.1, 5.0, 0.6, 20.0),
        DPIEPopulation([0.5, 1.0], 0.05, [3.0, 8.0], 0.8, 10.0, [1.0, -3.0], [2.0, 0.0]),
        NFW(20.0, 4.0),
        ENFW(20.0, 4.0, 0.6, 45.0),
        EllipticalNFW(20.0, 4.0, 0.6, 45.0),
        ENFW(20.0, 4.0, 0.8) + DPIE(1.0, 0.1, 5.0),
        _Disk(),
    ],
    ids=lambda p: type(p).__name__,
)
def test_scaled_multiplies_every_lensing_quantity(profile):
    x, y = _points(100, half=15.0)
    f = 0.37
    scaled = profile.scaled(f)
    assert isinstance(scaled, type(profile)) or isinstance(scaled, ScaledProfile)
    for ours, base in zip(scaled.deflection(x, y), profile.deflection(x, y), strict=True):
        np.testing.assert_allclose(ours, f * base, rtol=1e-12, atol=1e-14)
    for ours, base in zip(scaled.hessian(x, y), profile.hessian(x, y), strict=True):
        np.testing.assert_allclose(ours, f * base, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        scaled.convergence(x, y), f * profile.convergence(x, y), rtol=1e-12, atol=1e-14
    )
    with pytest.raises(ParameterError, match="factor"):
        profile.scaled(-1.0)


def test_builtin_profiles_scale_to_their_own_class():
    assert type(ENFW(20.0, 4.0).scaled(2.0)) is ENFW
    assert type((ENFW(20.0, 4.0) + DPIE(1.0, 0.1, 5.0)).scaled(2.0)) is Composite
    assert ENFW(20.0, 4.0, 0.7).scaled(0.5).alpha_rs == 2.0
    assert type(_Disk().scaled(2.0).scaled(0.5)) is ScaledProfile
    assert _Disk().scaled(2.0).scaled(0.5).factor == 1.0


def test_lowercase_registry_aliases():
    assert get_profile("dpie") is DPIE
    assert get_profile("dpie_population") is DPIEPopulation
    assert get_profile("enfw") is ENFW
    assert get_profile("cse_nfw") is EllipticalNFW
    assert get_profile("sie") is SIE
    assert DPIE.population_class is DPIEPopulation
    assert SIE.population_class is SIEPopulation
