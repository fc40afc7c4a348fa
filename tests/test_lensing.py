"""Tests of clusterlens.lensing: analytic limits, lenstronomy as an independent oracle."""

import math

import numpy as np
import pytest
from _analytic_lenses import SIS, CoredIsothermal
from scipy.spatial import cKDTree

from clusterlens.errors import ParameterError
from clusterlens.lensing import (
    LensCurves,
    _eigenvalues,
    caustics,
    critical_curves,
    einstein_radius,
    magnification,
    pixel_grid,
    ray_shoot,
)
from clusterlens.profiles import ENFW, SIE, SIEPopulation
from clusterlens.profiles.base import MassProfile

PIX = 0.125  # arcsec: 800 pixels over a 100 arcsec field, as in the benchmark


def _e1e2(q, phi_deg):
    """lenstronomy's ellipticity components for axis ratio q and angle phi (degrees)."""
    e = (1 - q) / (1 + q)
    return e * np.cos(2 * np.radians(phi_deg)), e * np.sin(2 * np.radians(phi_deg))


def _sie_kwargs(theta_e, q, phi, x0, y0):
    e1, e2 = _e1e2(q, phi)
    return dict(theta_E=theta_e, e1=e1, e2=e2, center_x=x0, center_y=y0)


def _densify(curves, step=0.05):
    """Points every ``step`` (fraction of a segment) along polylines, for distance queries."""
    out = []
    for c in curves:
        seg = np.diff(c, axis=0)
        for k in np.arange(0, 1, step):
            out.append(c[:-1] + k * seg)
        out.append(c[-1:])
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# grid conventions
# ---------------------------------------------------------------------------------------------
def test_pixel_grid_conventions():
    x, y = pixel_grid(4, 0.5)
    assert x.shape == y.shape == (4, 4)
    assert np.all(np.diff(x, axis=1) == 0.5) and np.all(np.diff(x, axis=0) == 0)
    assert np.all(np.diff(y, axis=0) == 0.5) and np.all(np.diff(y, axis=1) == 0)
    assert x.mean() == 0 and y.mean() == 0 and x[0, 0] == -0.75
    x, y = pixel_grid((3, 5), 1.0, center=(10.0, -2.0))
    assert x.shape == (3, 5) and x[1, 2] == 10.0 and y[1, 2] == -2.0 and y[0, 0] == -3.0


# ---------------------------------------------------------------------------------------------
# analytic limits
# ---------------------------------------------------------------------------------------------
def test_sis_critical_curve_is_circle_of_theta_e_and_caustic_a_point():
    lens = SIS(10.0, x0=0.3, y0=-0.2)
    curves = critical_curves(lens)
    assert len(curves.tangential) == 1 and curves.radial == ()
    c = curves.tangential[0]
    assert np.all(c[0] == c[-1]) and len(c) > 500  # closed and sampled about every pixel
    r = np.hypot(c[:, 0] - 0.3, c[:, 1] + 0.2)
    np.testing.assert_allclose(r, 10.0, atol=1e-5)
    assert einstein_radius(lens, lens_center=(0.3, -0.2), center=(0, 0)) == pytest.approx(
        10.0, rel=1e-4
    )
    caustic = caustics(lens, curves).tangential[0]
    assert np.abs(caustic - [0.3, -0.2]).max() < 1e-5  # the SIS caustic is a point


def test_radial_and_tangential_are_told_apart():
    lens = CoredIsothermal(8.0, 1.0)
    curves = critical_curves(lens, n_pix=400, pixel_scale=0.1)
    assert len(curves.tangential) == 1 and len(curves.radial) == 1
    np.testing.assert_allclose(
        np.hypot(*curves.tangential[0].T), lens.tangential_radius(), atol=1e-5
    )
    np.testing.assert_allclose(np.hypot(*curves.radial[0].T), lens.radial_radius(), atol=1e-5)
    # the radial caustic of a cored sphere is a circle, the tangential one a point
    cau = caustics(lens, curves)
    assert np.hypot(*cau.tangential[0].T).max() < 1e-5
    beta_r = np.hypot(*cau.radial[0].T)
    assert beta_r.min() > 1.0 and np.ptp(beta_r) < 1e-5
    # the Einstein radius uses the tangential curve only
    assert einstein_radius(lens, critical=curves) == pytest.approx(
        lens.tangential_radius(), rel=1e-4
    )


def test_sie_effective_einstein_radius_is_theta_e():
    # intermediate-axis convention: the kappa = 1/2 ellipse, which is the tangential
    # critical curve of an SIE, has area pi theta_E^2
    lens = SIE(5.0, 0.6, 30.0, x0=1.0, y0=2.0)
    curves = critical_curves(lens, n_pix=300, pixel_scale=0.05, center=(1.0, 2.0))
    assert len(curves.tangential) == 1
    c = curves.tangential[0]
    np.testing.assert_allclose(lens.convergence(c[:, 0], c[:, 1]), 0.5, atol=1e-6)
    assert einstein_radius(lens, lens_center=(1.0, 2.0), critical=curves) == pytest.approx(
        5.0, rel=2e-4
    )


def test_undercritical_lens_has_no_curves_and_zero_einstein_radius():
    lens = CoredIsothermal(1.0, 2.0)  # kappa <= 1/4 everywhere
    curves = critical_curves(lens, n_pix=100, pixel_scale=0.2)
    assert len(curves) == 0
    assert einstein_radius(lens, critical=curves) == 0.0


@pytest.mark.parametrize("center", [(0.0, 0.0), (8.0, 0.0), (6.0, 6.0)])
def test_einstein_radius_refuses_a_curve_leaving_the_field(center):
    # a 12.5 arcsec field inside (or across) a 10 arcsec Einstein ring
    with pytest.raises(ParameterError, match="traced field"):
        einstein_radius(SIS(10.0), n_pix=100, pixel_scale=0.125, center=center)


# ---------------------------------------------------------------------------------------------
# small member curves are not missed
# ---------------------------------------------------------------------------------------------
def _random_members(seed, n, theta_e_range, half):
    rng = np.random.default_rng(seed)
    return SIEPopulation(
        rng.uniform(*theta_e_range, n),
        rng.uniform(0.6, 1.0, n),
        rng.uniform(0, 180, n),
        rng.uniform(-half, half, n),
        rng.uniform(-half, half, n),
    )


def _assert_same_curves(adaptive, brute):
    assert len(adaptive.tangential) == len(brute.tangential)
    assert len(adaptive.radial) == len(brute.radial)
    # the same points up to the polishing tolerance (1e-4 pixel)
    assert cKDTree(_densify(adaptive.all)).query(_densify(brute.all))[0].max() < 2e-4 * PIX


def test_every_member_curve_is_found_by_the_adaptive_tracer():
    members = _random_members(7, 30, (0.15, 0.5), 45.0)
    lens = SIE(8.0, 0.8, 20.0) + members
    adaptive = critical_curves(lens)
    _assert_same_curves(adaptive, critical_curves(lens, coarse=1))
    # each member far from the cluster's curve has its own closed curve around its centre
    centres = np.column_stack([members.x0, members.y0])
    curve_centres = np.array([c[:-1].mean(axis=0) for c in adaptive.tangential])
    nearest_other = cKDTree(centres).query(centres, k=2)[0][:, 1]
    isolated = (np.hypot(members.x0, members.y0) > 15) & (nearest_other > 3)
    assert isolated.sum() > 15
    d = cKDTree(curve_centres).query(centres[isolated])[0]
    assert np.all(d < 0.5)


class _Anonymous(MassProfile):
    """A lens that hides its parts' centres, so the tracer gets no hint where members are."""

    def __init__(self, lens):
        self.lens = lens

    def _deflection(self, x, y):
        return self.lens._deflection(x, y)

    def _hessian(self, x, y):
        return self.lens._hessian(x, y)


def test_member_curves_are_found_without_centre_hints():
    lens = _Anonymous(ENFW(60.0, 12.0, 0.8, 10.0) + _random_members(11, 40, (0.12, 0.4), 30.0))
    adaptive = critical_curves(lens, n_pix=480, pixel_scale=PIX)
    _assert_same_curves(adaptive, critical_curves(lens, n_pix=480, pixel_scale=PIX, coarse=1))
    assert len(adaptive.tangential) > 20


# ---------------------------------------------------------------------------------------------
# lenstronomy as an independent implementation
# ---------------------------------------------------------------------------------------------
def test_magnification_and_ray_shooting_match_lenstronomy():
    pytest.importorskip("lenstronomy")
    from lenstronomy.LensModel.lens_model import LensModel

    rng = np.random.default_rng(1)
    params = [
        (rng.uniform(0.5, 3), rng.uniform(0.3, 1), rng.uniform(0, 180), *rng.normal(0, 3, 2))
        for _ in range(5)
    ]
    ours = sum(SIE(*p) for p in params)
    ref = LensModel(["SIE"] * len(params))
    kwargs = [_sie_kwargs(*p) for p in params]
    x, y = rng.uniform(-10, 10, (2, 40, 50))
    bx, by = ray_shoot(ours, x, y)
    rbx, rby = ref.ray_shooting(x, y, kwargs)
    assert bx.shape == (40, 50)
    np.testing.assert_allclose(bx, rbx, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(by, rby, rtol=1e-8, atol=1e-8)
    # lenstronomy's analytic SIE Hessian (a near-singular NIE) is off by up to ~3e-4 relative,
    # so its magnification is taken from finite differences of its (exact) deflection
    mu = magnification(ours, x, y)
    ref_mu = ref.magnification(x, y, kwargs, diff=1e-6, diff_method="cross")
    assert mu.shape == (40, 50)
    np.testing.assert_allclose(1 / mu, 1 / ref_mu, rtol=1e-6, atol=1e-7)
    moderate = np.abs(ref_mu) < 100
    np.testing.assert_allclose(mu[moderate], ref_mu[moderate], rtol=1e-5)
    # and exactly the formula, from our own Hessian
    fxx, fxy, fyy = ours.hessian(x, y)
    np.testing.assert_allclose(mu, 1 / ((1 - fxx) * (1 - fyy) - fxy**2), rtol=1e-12)


def _cluster(n=100, seed=3, half=45.0):
    """One pseudo-elliptical NFW halo and ``n`` member SIEs, ours and lenstronomy's."""
    rng = np.random.default_rng(seed)
    halo = ENFW(83.42, 15.0, 0.7, 25.0)
    halo_kwargs = dict(Rs=83.42, alpha_Rs=15.0, center_x=0.0, center_y=0.0)
    halo_kwargs["e1"], halo_kwargs["e2"] = _e1e2(0.7, 25.0)
    members = SIEPopulation(
        10 ** rng.uniform(-1.0, -0.1, n),  # 0.1 to 0.8 arcsec, most members small
        rng.uniform(0.5, 1.0, n),
        rng.uniform(0, 180, n),
        rng.uniform(-half, half, n),
        rng.uniform(-half, half, n),
    )
    ref_kwargs = [halo_kwargs] + [
        _sie_kwargs(*m)
        for m in zip(members.theta_e, members.q, members.phi, members.x0, members.y0, strict=True)
    ]
    return halo + members, ["NFW_ELLIPSE_POTENTIAL"] + ["SIE"] * n, ref_kwargs


def test_critical_curves_of_a_cluster_match_lenstronomy_within_a_pixel():
    pytest.importorskip("lenstronomy")
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.lens_model_extensions import LensModelExtensions

    lens, models, kwargs = _cluster()
    assert len(lens.components[1]) == 100
    ours = critical_curves(lens, n_pix=800, pixel_scale=PIX)
    ours_caustics = caustics(lens, ours)
    ext = LensModelExtensions(LensModel(models))
    rx, ry, cx, cy = ext.critical_curve_caustics(kwargs, compute_window=100, grid_scale=PIX)
    theirs = [np.column_stack([a, b]) for a, b in zip(rx, ry, strict=True)]
    # lenstronomy contours 1/mu = lambda_t lambda_r, both kinds at once
    d_theirs = cKDTree(_densify(ours.all)).query(_densify(theirs))[0] / PIX
    d_ours = cKDTree(_densify(theirs)).query(_densify(ours.all))[0] / PIX
    # Our points are zeros of their eigenvalue, polished to 1e-4 pixel along their pixel edge
    # (|lambda| < 1e-4 even next to members' centres, where it changes by ~10 per arcsec);
    # lenstronomy's points interpolate 1/mu linearly between pixels.
    for curves, which in ((ours.tangential, 0), (ours.radial, 1)):
        pts = np.concatenate(curves)
        lam = _eigenvalues(*lens.hessian(pts[:, 0], pts[:, 1]))[which]
        assert np.abs(lam).max() < 1e-4 and np.median(np.abs(lam)) < 1e-8
    # The curves agree within a pixel, except at saddles where an eigenvalue stays within
    # ~1e-2 of zero over pixels (two curves about to touch): there lenstronomy's linear
    # interpolation of 1/mu draws loops or joins up to 2 pixels away from the exact zeros.
    # (lenstronomy's NFW_ELLIPSE_POTENTIAL Hessian is a forward difference of its deflection,
    # with errors of ~3e-3 in the eigenvalues, so its curves also wobble by ~0.2 pixel.)
    assert np.percentile(d_theirs, 99.5) < 1.0 and np.percentile(d_ours, 99.5) < 1.0
    assert d_ours.max() < 2.0
    far = _densify(theirs)[d_theirs > 1.0]
    if len(far):
        assert np.abs(1 / magnification(lens, far[:, 0], far[:, 1])).max() < 0.02
    # lenstronomy finds no curve we miss: each of its curves (but the saddle loops of a few
    # points above) has one of ours
    for c in theirs:
        if len(c) > 8:
            assert cKDTree(_densify(ours.all)).query(c)[0].min() < PIX
    # the caustics agree with lenstronomy's ray shooting of our curve points
    ref = LensModel(models)
    for crit, cau in zip(ours.all, ours_caustics.all, strict=True):
        bx, by = ref.ray_shooting(crit[:, 0], crit[:, 1], kwargs)
        np.testing.assert_allclose(cau, np.column_stack([bx, by]), atol=1e-7)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: critical_curves("not a lens"), "'lens' parameter of critical_curves"),
        (lambda: critical_curves(SIS(1.0), n_pix=1), "'n_pix' parameter"),
        (lambda: critical_curves(SIS(1.0), n_pix=10.5), "'n_pix' parameter"),
        (lambda: critical_curves(SIS(1.0), pixel_scale=-0.1), "'pixel_scale' parameter"),
        (lambda: critical_curves(SIS(1.0), pixel_scale=math.nan), "'pixel_scale' parameter"),
        (lambda: critical_curves(SIS(1.0), center=(1.0,)), "'center' parameter"),
        (lambda: critical_curves(SIS(1.0), coarse=0), "'coarse' parameter"),
        (lambda: critical_curves(SIS(1.0), coarse=6), "power of two"),
        (lambda: caustics(SIS(1.0), critical=[np.zeros((3, 2))]), "'critical' parameter"),
        (lambda: einstein_radius(SIS(1.0), critical="x"), "'critical' parameter"),
        (lambda: magnification(SIS(1.0), np.ones(3), np.ones(4)), "same \\(or broadcastable"),
        (lambda: ray_shoot(SIS(1.0), [np.nan], [1.0]), "'x' parameter of ray_shoot"),
        (lambda: magnification(None, 1.0, 1.0), "'lens' parameter of magnification"),
        (lambda: pixel_grid(0, 0.1), "'n_pix' parameter of pixel_grid"),
        (lambda: LensCurves((np.zeros(3),), (), 0.1), "must be \\(N, 2\\) arrays"),
    ],
)
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(ParameterError, match=match):
        call()
