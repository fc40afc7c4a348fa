"""Mass profiles: analytic limits, lenstronomy as an independent oracle, bad input."""

from dataclasses import dataclass

import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.profiles import (
    ENFW,
    NFW,
    SIE,
    ConvergenceProfile,
    DPIEPopulation,
    EllipticalNFW,
    SIEPopulation,
    available_profiles,
    get_profile,
    nfw_angles,
    register_profile,
)

lenstronomy = pytest.importorskip("lenstronomy")
from lenstronomy.LensModel.lens_model import LensModel  # noqa: E402
from lenstronomy.Util import param_util  # noqa: E402

RNG_SEED = 20261124


def _points(rng, n=400, half=25.0):
    return rng.uniform(-half, half, n), rng.uniform(-half, half, n)


def _e1e2(phi_deg, q):
    return param_util.phi_q2_ellipticity(np.deg2rad(phi_deg), q)


def _rel(a, b):
    """Largest |a - b| relative to the largest |b| of the field (componentwise arrays)."""
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))


# --- analytic limits ---------------------------------------------------------------------


def test_sis_deflection_magnitude_is_theta_e_everywhere():
    rng = np.random.default_rng(RNG_SEED)
    x, y = _points(rng)
    ax, ay = SIE(1.7, 1.0, 33.0, 0.4, -0.3).deflection(x, y)
    np.testing.assert_allclose(np.hypot(ax, ay), 1.7, rtol=1e-14)


def test_sie_finite_at_centre():
    s = SIE(1.0, 0.6, 10.0, 0.5, 0.5)
    ax, ay = s.deflection(0.5, 0.5)
    assert ax == 0.0 and ay == 0.0
    assert all(np.isfinite(h) for h in s.hessian(0.5, 0.5))


def test_sie_q_to_one_is_continuous():
    rng = np.random.default_rng(RNG_SEED)
    x, y = _points(rng)
    ref = SIE(1.3, 1.0, 20.0).deflection(x, y)
    hess = SIE(1.3, 1.0, 20.0).hessian(x, y)
    for q in (1 - 1e-6, 1 - 1e-10, 1 - 1e-15):
        near = SIE(1.3, q, 20.0).deflection(x, y)
        assert _rel(near[0], ref[0]) < 5 * (1 - q) + 1e-14
        assert _rel(near[1], ref[1]) < 5 * (1 - q) + 1e-14
        for got, want in zip(SIE(1.3, q, 20.0).hessian(x, y), hess, strict=True):
            assert _rel(got, want) < 5 * (1 - q) + 1e-13


def _numerical_jacobian(profile, x, y, h=1e-5):
    axp, ayp = profile.deflection(x + h, y)
    axm, aym = profile.deflection(x - h, y)
    bxp, byp = profile.deflection(x, y + h)
    bxm, bym = profile.deflection(x, y - h)
    return (
        (axp - axm) / (2 * h),
        (bxp - bxm) / (2 * h),
        (ayp - aym) / (2 * h),
        (byp - bym) / (2 * h),
    )


def _check_derivatives(profile, x, y, rtol):
    dax_dx, dax_dy, day_dx, day_dy = _numerical_jacobian(profile, x, y)
    fxx, fxy, fyy = profile.hessian(x, y)
    scale = np.abs(fxx) + np.abs(fyy)
    assert np.max(np.abs(fxx - dax_dx) / scale) < rtol
    assert np.max(np.abs(fyy - day_dy) / scale) < rtol
    assert np.max(np.abs(fxy - dax_dy) / scale) < rtol
    assert np.max(np.abs(fxy - day_dx) / scale) < rtol
    kappa = profile.convergence(x, y)
    np.testing.assert_allclose(
        0.5 * (dax_dx + day_dy), kappa, rtol=rtol, atol=rtol * np.max(np.abs(kappa))
    )


def test_sie_hessian_and_convergence_match_finite_differences():
    rng = np.random.default_rng(RNG_SEED)
    x, y = _points(rng, 300, 10.0)
    keep = np.hypot(x - 0.2, y + 0.1) > 0.3
    _check_derivatives(SIE(1.4, 0.55, 71.0, 0.2, -0.1), x[keep], y[keep], 1e-7)


# --- lenstronomy -------------------------------------------------------------------------


def test_sie_matches_lenstronomy_over_random_parameters():
    rng = np.random.default_rng(RNG_SEED)
    x, y = _points(rng, 300)
    epl = LensModel(["EPL"])  # gamma = 2: the SIE with analytic Hessian (Tessore & Metcalf 2015)
    sie = LensModel(["SIE"])  # NIE with a 1e-10" core; its Hessian is a finite difference
    for _ in range(60):
        te, q = rng.uniform(0.05, 8.0), rng.uniform(0.08, 0.999)
        phi, x0, y0 = rng.uniform(-180, 180), rng.uniform(-5, 5), rng.uniform(-5, 5)
        e1, e2 = _e1e2(phi, q)
        kw = dict(theta_E=te, e1=e1, e2=e2, center_x=x0, center_y=y0)
        ours = SIE(te, q, phi, x0, y0)
        ax, ay = ours.deflection(x, y)
        for model, extra in ((epl, {"gamma": 2.0}), (sie, {})):
            lx, ly = model.alpha(x, y, [{**kw, **extra}])
            assert np.max(np.hypot(ax - lx, ay - ly) / np.hypot(lx, ly)) < 1e-8
        kwe = [{**kw, "gamma": 2.0}]
        lxx, lxy, _, lyy = epl.hessian(x, y, kwe)
        fxx, fxy, fyy = ours.hessian(x, y)
        scale = np.abs(lxx) + np.abs(lyy)
        for a, b in ((fxx, lxx), (fxy, lxy), (fyy, lyy)):
            assert np.max(np.abs(a - b) / scale) < 1e-8
        np.testing.assert_allclose(ours.potential(x, y), epl.potential(x, y, kwe), rtol=1e-8)
        np.testing.assert_allclose(ours.convergence(x, y), epl.kappa(x, y, kwe), rtol=1e-8)


def _sie_closed_form(te, q, phi, x, y):
    """numpy's arctan/arctanh in the SIE's closed form (centre at the origin)."""
    c, sn = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
    xp, yp = c * x + sn * y, c * y - sn * x
    psi = np.sqrt(q * q * xp * xp + yp * yp)
    s = np.sqrt(1 - q * q)
    fx = te * np.sqrt(q) / s * np.arctan(s * xp / psi)
    fy = te * np.sqrt(q) / s * np.arctanh(s * yp / psi)
    return c * fx - sn * fy, sn * fx + c * fy


def test_kernel_arctan_and_arctanh_are_correct_to_a_few_ulp():
    # every branch of the reductions: arctan's near-one, below and reflected cases over
    # ratios 1e-6 .. 1e6 of both signs; arctanh direct (|z| <= 1/3) and through the log
    mpmath = pytest.importorskip("mpmath")
    from numba import njit

    from clusterlens.profiles._fastmath import atan_atanh_ratio, atan_ratio, atanh_ratio

    @njit
    def evaluate(n, d, z):
        out = np.empty((4, n.size))
        for i in range(n.size):
            out[0, i] = atan_ratio(n[i], d[i])
            out[1, i] = atanh_ratio(z[i] * d[i], d[i])
            out[2, i], out[3, i] = atan_atanh_ratio(n[i], z[i] * d[i], d[i])
        return out

    rng = np.random.default_rng(RNG_SEED)
    d = 10 ** rng.uniform(-3, 3, 3000)
    n = d * rng.choice([-1, 1], 3000) * 10 ** rng.uniform(-6, 6, 3000)
    z = rng.uniform(-0.999, 0.999, 3000)
    got = evaluate(n, d, z)
    mpmath.mp.dps = 30
    want_atan = np.array(
        [float(mpmath.atan(mpmath.mpf(a) / mpmath.mpf(b))) for a, b in zip(n, d, strict=True)]
    )
    zd = z * d  # the argument as the kernels see it
    want_atanh = np.array(
        [float(mpmath.atanh(mpmath.mpf(a) / mpmath.mpf(b))) for a, b in zip(zd, d, strict=True)]
    )
    # measured: 2.2e-16, 4.4e-16; the SIE deflection's degree-9 fits 1.3e-15, 4.1e-16
    assert np.max(np.abs(got[0] - want_atan) / np.abs(want_atan)) < 3e-16
    assert np.max(np.abs(got[1] - want_atanh) / np.abs(want_atanh)) < 6e-16
    assert np.max(np.abs(got[2] - want_atan) / np.abs(want_atan)) < 2e-15
    assert np.max(np.abs(got[3] - want_atanh) / np.abs(want_atanh)) < 6e-16


@pytest.mark.parametrize("q", [0.05, 0.1, 0.3, 0.5, 0.7071, 0.7072, 0.9, 0.99, 1 - 1e-6])
def test_sie_deflection_is_exact_to_rounding(q):
    # every branch of the kernel's arctan (near 1, below, reflected above) and arctanh
    # (direct, through the logarithm) over six decades of radius and on the axes; numpy's
    # own closed form is accurate to ~1e-15 / q^2 (the arctanh argument nears 1 at low q)
    rng = np.random.default_rng(RNG_SEED)
    ang = rng.uniform(0.0, 2 * np.pi, 6000)
    r = 10 ** rng.uniform(-4, 2, 6000)
    x = np.concatenate([r * np.cos(ang), r[:100], 0 * r[:100]])
    y = np.concatenate([r * np.sin(ang), 0 * r[:100], r[:100]])
    for phi in (0.0, 37.0):
        ax, ay = SIE(1.3, q, phi).deflection(x, y)
        rx, ry = _sie_closed_form(1.3, q, phi, x, y)
        assert np.max(np.hypot(ax - rx, ay - ry)) / 1.3 < 3e-15 / q**2


# --- SIEPopulation -----------------------------------------------------------------------


def _random_population(rng, n):
    return SIEPopulation(
        rng.uniform(0.05, 1.5, n),
        rng.uniform(0.3, 1.0, n),
        rng.uniform(-90, 90, n),
        rng.uniform(-40, 40, n),
        rng.uniform(-40, 40, n),
    )


def test_population_equals_sum_of_individual_sies():
    rng = np.random.default_rng(RNG_SEED)
    pop = _random_population(rng, 25)
    x, y = _points(rng, 1500, 45.0)
    total = sum(pop.members())
    for method in ("deflection", "hessian", "potential", "convergence"):
        got, want = getattr(pop, method)(x, y), getattr(total, method)(x, y)
        for g, w in zip(np.atleast_2d(got), np.atleast_2d(want), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13 * np.max(np.abs(w)))


@pytest.mark.parametrize("n", [1, 5, 3 * 512 + 17])
def test_kernels_give_the_same_numbers_on_any_thread_count(n):
    # whichever thread computes a pixel block, every block is computed once, by the same code
    import numba

    rng = np.random.default_rng(RNG_SEED)
    x, y = _points(rng, n, 45.0)
    members = DPIEPopulation(rng.uniform(0.1, 1.0, 20), 0.05, 8.0, 0.6, 10.0, *_points(rng, 20))
    lens = ENFW(30.0, 8.0, 0.65, 25.0) + _random_population(rng, 30) + members
    cse = EllipticalNFW(20.0, 5.0, 0.7, 10.0)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = [lens.deflection(x, y), lens.hessian(x, y), cse.deflection(x, y)]
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        multi = [lens.deflection(x, y), lens.hessian(x, y), cse.deflection(x, y)]
    finally:
        numba.set_num_threads(threads)
    for one, many in zip(single, multi, strict=True):
        for a, b in zip(one, many, strict=True):
            np.testing.assert_array_equal(a, b)


def test_population_keeps_input_shape():
    rng = np.random.default_rng(RNG_SEED)
    pop = _random_population(rng, 3)
    yy, xx = np.mgrid[-5:5:7j, -5:5:9j]
    ax, ay = pop.deflection(xx, yy)
    assert ax.shape == (7, 9) and ay.shape == (7, 9)
    assert pop.hessian(xx, yy)[1].shape == (7, 9)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"theta_e": 1.0, "q": 1.3}, "q"),
        ({"theta_e": 1.0, "q": 0.0}, "q"),
        ({"theta_e": -1.0, "q": 0.5}, "theta_e"),
        ({"theta_e": float("nan"), "q": 0.5}, "theta_e"),
        ({"theta_e": 1.0, "q": 0.5, "phi": float("nan")}, "phi"),
    ],
)
def test_sie_bad_parameters(kwargs, name):
    with pytest.raises(ParameterError, match=f"'{name}' parameter of SIE"):
        SIE(**kwargs)


def test_population_bad_parameters():
    with pytest.raises(ParameterError, match="matching shapes"):
        SIEPopulation([1.0, 1.0], [0.5, 0.5, 0.5], 0.0, 0.0, 0.0)
    with pytest.raises(ParameterError, match="'q' parameter of SIEPopulation"):
        SIEPopulation([1.0, 1.0], [0.5, 1.5], 0.0, 0.0, 0.0)
    with pytest.raises(ParameterError, match="'theta_e' parameter of SIEPopulation"):
        SIEPopulation([1.0, -1.0], 0.5, 0.0, 0.0, 0.0)


def test_coordinates_bad_input():
    s = SIE(1.0, 0.5)
    with pytest.raises(ParameterError, match="'x'"):
        s.deflection([np.nan], [0.0])
    with pytest.raises(ParameterError, match="same"):
        s.deflection(np.zeros(3), np.zeros(4))


# --- NFW ---------------------------------------------------------------------------------


def _assert_matches(ours, model, kw, x, y, *, hessian=True, rtol=1e-8):
    """Deflection (and Hessian, convergence, potential) agree with lenstronomy to rtol."""
    ax, ay = ours.deflection(x, y)
    lx, ly = model.alpha(x, y, kw)
    assert np.max(np.hypot(ax - lx, ay - ly) / np.hypot(lx, ly)) < rtol
    np.testing.assert_allclose(ours.potential(x, y), model.potential(x, y, kw), rtol=rtol)
    if not hessian:
        return
    lxx, lxy, _, lyy = model.hessian(x, y, kw)
    fxx, fxy, fyy = ours.hessian(x, y)
    scale = np.abs(lxx) + np.abs(lyy)
    for got, want in ((fxx, lxx), (fxy, lxy), (fyy, lyy)):
        assert np.max(np.abs(got - want) / scale) < rtol
    np.testing.assert_allclose(ours.convergence(x, y), model.kappa(x, y, kw), rtol=rtol)


def _nfw_points(rng, rs, x0, y0, n=500):
    """Points from 0.02 rs to 8 rs, away from X = 1 where lenstronomy's F(X) loses digits."""
    r = rs * 10 ** rng.uniform(np.log10(0.02), np.log10(8.0), n)
    r = r[np.abs(r / rs - 1) > 0.02]
    t = rng.uniform(0, 2 * np.pi, r.size)
    return x0 + r * np.cos(t), y0 + r * np.sin(t)


def test_nfw_matches_lenstronomy_over_random_parameters():
    rng = np.random.default_rng(RNG_SEED)
    model = LensModel(["NFW"])
    for _ in range(40):
        rs, a = rng.uniform(2.0, 120.0), rng.uniform(0.5, 40.0)
        x0, y0 = rng.uniform(-5, 5, 2)
        x, y = _nfw_points(rng, rs, x0, y0)
        kw = [dict(Rs=rs, alpha_Rs=a, center_x=x0, center_y=y0)]
        _assert_matches(NFW(rs, a, x0, y0), model, kw, x, y)


def test_enfw_matches_lenstronomy_over_random_parameters():
    rng = np.random.default_rng(RNG_SEED)
    model = LensModel(["NFW_ELLIPSE_POTENTIAL"])
    for _ in range(40):
        rs, a = rng.uniform(2.0, 120.0), rng.uniform(0.5, 40.0)
        q, phi = rng.uniform(0.3, 1.0), rng.uniform(-180, 180)
        x0, y0 = rng.uniform(-5, 5, 2)
        x, y = _nfw_points(rng, rs, x0, y0)
        e1, e2 = _e1e2(phi, q)
        kw = [dict(Rs=rs, alpha_Rs=a, e1=e1, e2=e2, center_x=x0, center_y=y0)]
        ours = ENFW(rs, a, q, phi, x0, y0)
        _assert_matches(ours, model, kw, x, y, hessian=False)
        # lenstronomy's own Hessian of this profile is a forward difference with a 1e-10"
        # step (errors up to ~1e-2); compare with a central difference of its deflection
        h = 1e-4 * rs
        lxp, lyp = model.alpha(x + h, y, kw)
        lxm, lym = model.alpha(x - h, y, kw)
        bxp, byp = model.alpha(x, y + h, kw)
        bxm, bym = model.alpha(x, y - h, kw)
        lxx, lxy, lyy = (lxp - lxm) / (2 * h), (bxp - bxm) / (2 * h), (byp - bym) / (2 * h)
        fxx, fxy, fyy = ours.hessian(x, y)
        scale = np.abs(lxx) + np.abs(lyy)
        for got, want in ((fxx, lxx), (fxy, lxy), (fyy, lyy)):
            assert np.max(np.abs(got - want) / scale) < 3e-5


def test_nfw_hessian_and_convergence_match_finite_differences():
    rng = np.random.default_rng(RNG_SEED)
    for profile in (NFW(20.0, 6.0, 1.0, -2.0), ENFW(20.0, 6.0, 0.6, 35.0, 1.0, -2.0)):
        x, y = _nfw_points(rng, 20.0, 1.0, -2.0, 300)
        _check_derivatives(profile, x, y, 1e-7)


def test_enfw_q_one_is_nfw():
    rng = np.random.default_rng(RNG_SEED)
    x, y = _points(rng)
    a = ENFW(15.0, 5.0, 1.0, 40.0, 0.3, 0.1).deflection(x, y)
    b = NFW(15.0, 5.0, 0.3, 0.1).deflection(x, y)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_nfw_angles_worked_example_and_lenstronomy():
    from astropy.cosmology import FlatLambdaCDM
    from lenstronomy.Cosmo.lens_cosmo import LensCosmo

    rs, alpha_rs = nfw_angles(1e15, 4.0, 0.4, 2.0)
    assert rs == pytest.approx(83.42, abs=0.01)
    assert alpha_rs == pytest.approx(23.40, abs=0.02)
    cosmo = FlatLambdaCDM(H0=70, Om0=0.3)
    lrs, lalpha = LensCosmo(0.4, 2.0, cosmo=cosmo).nfw_physical2angle(M=1e15, c=4.0)
    assert rs == pytest.approx(lrs, rel=1e-5)
    # lenstronomy uses its own G, c and Mpc constants (2.8e-4 apart from astropy's)
    assert alpha_rs == pytest.approx(lalpha, rel=5e-4)


def test_enfw_from_m500():
    halo = ENFW.from_m500(5e14, 0.4, 2.0, 0.7, 20.0, c500c=2.66)
    assert isinstance(halo, ENFW) and halo.q == 0.7 and halo.phi == 20.0
    rs, alpha_rs = nfw_angles(7.2e14, 4.08, 0.4, 2.0)
    assert halo.rs == pytest.approx(rs, rel=0.02)
    assert halo.alpha_rs == pytest.approx(alpha_rs, rel=0.02)
    default = ENFW.from_m500(5e14, 0.4, 2.0)
    assert 10.0 < default.rs < 200.0 and default.alpha_rs > 0


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (NFW, {"rs": -1.0, "alpha_rs": 1.0}, "rs"),
        (NFW, {"rs": 1.0, "alpha_rs": float("nan")}, "alpha_rs"),
        (ENFW, {"rs": 1.0, "alpha_rs": 1.0, "q": 1.5}, "q"),
        (ENFW, {"rs": 1.0, "alpha_rs": -1.0}, "alpha_rs"),
    ],
)
def test_nfw_bad_parameters(cls, kwargs, name):
    with pytest.raises(ParameterError, match=f"'{name}' parameter of {cls.__name__}"):
        cls(**kwargs)


def test_from_m500_bad_input():
    with pytest.raises(ParameterError, match="'m500'"):
        ENFW.from_m500(-1e14, 0.4, 2.0)
    with pytest.raises(ParameterError, match="'z_source'"):
        ENFW.from_m500(1e14, 0.4, 0.3)


# --- composite: one halo and 100 members --------------------------------------------------


def test_composite_halo_plus_100_members_matches_lenstronomy():
    rng = np.random.default_rng(RNG_SEED)
    n = 100
    te, q = rng.uniform(0.05, 1.2, n), rng.uniform(0.3, 0.999, n)
    phi, x0, y0 = rng.uniform(-90, 90, n), rng.uniform(-40, 40, n), rng.uniform(-40, 40, n)
    lens = ENFW(30.0, 8.0, 0.65, 25.0, 0.5, -0.5) + SIEPopulation(te, q, phi, x0, y0)
    kwargs = [dict(Rs=30.0, alpha_Rs=8.0, center_x=0.5, center_y=-0.5)]
    kwargs[0]["e1"], kwargs[0]["e2"] = _e1e2(25.0, 0.65)
    for i in range(n):
        e1, e2 = _e1e2(phi[i], q[i])
        kwargs.append(dict(theta_E=te[i], e1=e1, e2=e2, center_x=x0[i], center_y=y0[i]))
    model = LensModel(["NFW_ELLIPSE_POTENTIAL"] + ["SIE"] * n)
    yy, xx = np.mgrid[-50:50:61j, -50:50:61j]
    ax, ay = lens.deflection(xx, yy)
    lx, ly = model.alpha(xx, yy, kwargs)
    assert np.max(np.hypot(ax - lx, ay - ly) / np.hypot(lx, ly)) < 1e-8
    np.testing.assert_allclose(lens.potential(xx, yy), model.potential(xx, yy, kwargs), rtol=1e-8)


# --- elliptical-convergence NFW (CSE) -----------------------------------------------------


def test_elliptical_nfw_matches_lenstronomy_cse():
    rng = np.random.default_rng(RNG_SEED)
    model = LensModel(["NFW_ELLIPSE_CSE"])
    for _ in range(25):
        rs, a = rng.uniform(2.0, 120.0), rng.uniform(0.5, 40.0)
        q, phi = rng.uniform(0.2, 1.0), rng.uniform(-180, 180)
        x0, y0 = rng.uniform(-5, 5, 2)
        x, y = _nfw_points(rng, rs, x0, y0, 300)
        e1, e2 = _e1e2(phi, q)
        kw = [dict(Rs=rs, alpha_Rs=a, e1=e1, e2=e2, center_x=x0, center_y=y0)]
        _assert_matches(EllipticalNFW(rs, a, q, phi, x0, y0), model, kw, x, y)


def test_elliptical_nfw_is_nfw_when_round_and_has_elliptical_convergence():
    r = np.logspace(-2, 1.5, 60) * 20.0
    cse = EllipticalNFW(20.0, 5.0).convergence(r, 0 * r)
    np.testing.assert_allclose(cse, NFW(20.0, 5.0).convergence(r, 0 * r), rtol=1e-4)
    # iso-kappa contours are ellipses with axis ratio q: kappa(x' = a) = kappa(y' = q a)
    halo = EllipticalNFW(20.0, 5.0, 0.5, 0.0)
    np.testing.assert_allclose(halo.convergence(r, 0 * r), halo.convergence(0 * r, 0.5 * r))
    _check_derivatives(
        EllipticalNFW(20.0, 5.0, 0.6, 35.0, 1.0, -2.0),
        *_nfw_points(np.random.default_rng(RNG_SEED), 20.0, 1.0, -2.0, 200),
        1e-7,
    )


def test_elliptical_nfw_from_m500():
    a = EllipticalNFW.from_m500(5e14, 0.4, 2.0, 0.6, 10.0, c500c=3.0)
    b = ENFW.from_m500(5e14, 0.4, 2.0, 0.6, 10.0, c500c=3.0)
    assert isinstance(a, EllipticalNFW)
    assert (a.rs, a.alpha_rs) == (b.rs, b.alpha_rs)


# --- registry and user profiles -----------------------------------------------------------


def test_registry_has_the_builtin_profiles():
    names = available_profiles()
    for cls in (SIE, SIEPopulation, NFW, ENFW, EllipticalNFW):
        assert cls.__name__ in names
        assert get_profile(cls.__name__) is cls
    with pytest.raises(ParameterError, match="'name' parameter of get_profile"):
        get_profile("NoSuchProfile")


@dataclass(frozen=True)
class GaussianDisk(ConvergenceProfile):
    """kappa = kappa0 exp(-r^2 / (2 sigma^2)); deflection 2 kappa0 sigma^2 (1 - e^{-r^2/2s^2})/r."""

    kappa0: float = 0.8
    sigma: float = 3.0
    x0: float = 0.5
    y0: float = -0.3
    grid_half_width = 30.0
    grid_size = 301

    def _convergence(self, x, y):
        r2 = (x - self.x0) ** 2 + (y - self.y0) ** 2
        return self.kappa0 * np.exp(-r2 / (2 * self.sigma**2))


def test_convergence_only_profile_gets_numerical_deflection_and_hessian():
    rng = np.random.default_rng(RNG_SEED)
    disk = GaussianDisk()
    x, y = _points(rng, 400, 15.0)
    dx, dy = x - 0.5, y + 0.3
    r2 = dx * dx + dy * dy
    a = 2 * 0.8 * 9.0 * (1 - np.exp(-r2 / 18.0)) / r2
    ax, ay = disk.deflection(x, y)
    assert np.max(np.hypot(ax - a * dx, ay - a * dy)) < 2e-3 * np.max(a * np.sqrt(r2))
    fxx, fxy, fyy = disk.hessian(x, y)
    assert np.max(np.abs(0.5 * (fxx + fyy) - disk.convergence(x, y))) < 5e-3
    # it plugs into composites and the registry like any profile
    lens = disk + SIE(1.0, 0.7, 10.0)
    np.testing.assert_allclose(
        lens.deflection(x, y)[0], ax + SIE(1.0, 0.7, 10.0).deflection(x, y)[0]
    )
    register_profile(GaussianDisk)
    assert get_profile("GaussianDisk") is GaussianDisk
    with pytest.raises(ParameterError, match="already"):
        register_profile(type("GaussianDisk", (ConvergenceProfile,), {}))


def test_entry_point_profiles_are_loaded_lazily(monkeypatch):
    import importlib.metadata

    from clusterlens.profiles import base

    class FakeEntryPoint:
        name = "PluginSIE"

        def load(self):
            return type("PluginSIE", (SIE,), {"__module__": "plugin"})

    seen = []

    def fake_entry_points(group):
        seen.append(group)
        return [FakeEntryPoint()]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(base, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    assert get_profile("PluginSIE")(1.0).theta_e == 1.0
    assert seen == ["clusterlens.profiles"]
    assert "PluginSIE" in available_profiles()


def test_population_from_stellar_masses():
    from clusterlens import cosmology

    mstar = np.array([2e10, 1e11, 4e11])
    pop = SIEPopulation.from_stellar_masses(
        mstar, [1.0, -2.0, 3.0], [0.0, 4.0, -1.0], 0.35, 1.8, q=[0.6, 0.8, 1.0], phi=15.0
    )
    theta = cosmology.sigma_to_theta_e(cosmology.velocity_dispersion(mstar), 0.35, 1.8)
    np.testing.assert_allclose(pop.theta_e, theta)
    assert len(pop) == 3 and np.all(pop.phi == 15.0)
    assert 0.1 < pop.theta_e[0] < pop.theta_e[1] < pop.theta_e[2] < 3.0
    with pytest.raises(ParameterError, match="'stellar_mass'"):
        SIEPopulation.from_stellar_masses([-1.0], [0.0], [0.0], 0.35, 1.8)
    with pytest.raises(ParameterError, match="'z_source'"):
        SIEPopulation.from_stellar_masses([1e11], [0.0], [0.0], 0.35, 0.2)
