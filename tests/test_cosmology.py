"""Cosmology helpers: the candidate catalog's R_500, distances, Einstein radii, colossus."""

import math

import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM, LambdaCDM, Planck18

from clusterlens import cosmology as cosmo
from clusterlens.errors import ParameterError
from tests._data import ZHANG_CATALOG, needs_zhang

CATALOG = ZHANG_CATALOG


@needs_zhang
def test_r500_reproduces_the_candidate_catalog():
    from astropy.table import Table

    table = Table.read(CATALOG)
    r = cosmo.r500(10 ** np.asarray(table["M_500"]), np.asarray(table["PZ_BCG"]))
    # the catalog rounds log10 M and z; 2e-4 covers that
    np.testing.assert_allclose(r, table["R_500"], rtol=2e-4)


def test_m500_inverts_r500():
    m = np.array([1e13, 3e14, 2e15])
    z = np.array([0.1, 0.4, 0.9])
    np.testing.assert_allclose(cosmo.m500(cosmo.r500(m, z), z), m, rtol=1e-13)
    assert isinstance(cosmo.r500(1e14, 0.3), float)


def test_r500_definition():
    rho = Planck18.critical_density(0.5).to_value("Msun / Mpc3")
    r = cosmo.r500(1e15, 0.5, cosmology=Planck18)
    assert 4 / 3 * math.pi * r**3 * 500 * rho == pytest.approx(1e15, rel=1e-12)


def test_sigma_to_theta_e_worked_example():
    assert cosmo.sigma_to_theta_e(250.0, 0.4, 2.0) == pytest.approx(1.263, abs=5e-4)
    theta = cosmo.sigma_to_theta_e(np.array([200.0, 400.0]), 0.4, 2.0)
    assert theta[1] / theta[0] == pytest.approx(4.0)


def test_sigma_crit_matches_lenstronomy():
    lenstronomy = pytest.importorskip("lenstronomy")  # noqa: F841
    from lenstronomy.Cosmo.lens_cosmo import LensCosmo

    c = FlatLambdaCDM(H0=70, Om0=0.3)
    lc = LensCosmo(0.4, 2.0, cosmo=c)
    # lenstronomy's sigma_crit is in Msun/Mpc^2; its constants differ from astropy's ~1e-4
    assert cosmo.sigma_crit(0.4, 2.0) == pytest.approx(lc.sigma_crit, rel=1e-3)
    assert cosmo.sigma_crit_arcsec2(0.4, 2.0) == pytest.approx(lc.sigma_crit_angle, rel=1e-3)
    d_d, d_s, d_ds = cosmo.angular_diameter_distances(0.4, 2.0)
    assert (d_d, d_s, d_ds) == pytest.approx((lc.dd, lc.ds, lc.dds), rel=1e-10)


def test_velocity_dispersion_relations():
    # at the break mass the Zahid et al. (2016) relation is sigma_b = 10^2.07 km/s
    assert cosmo.velocity_dispersion(10**10.26) == pytest.approx(10**2.07)
    s = cosmo.velocity_dispersion(np.array([1e10, 1e11, 1e12]))
    assert np.all(np.diff(s) > 0)
    assert np.log10(s[2] / s[1]) == pytest.approx(0.293)
    assert cosmo.velocity_dispersion(1e11, relation="auger2010") == pytest.approx(10**2.32)


def test_nfw_halo_matches_colossus_directly():
    from colossus.cosmology import cosmology as ccosmo
    from colossus.halo import concentration, mass_defs

    halo = cosmo.nfw_halo(5e14, 0.4)
    current = ccosmo.getCurrent()
    assert current.H0 == 70.0 and current.Om0 == 0.3 and current.flat
    h = 0.7
    c500 = concentration.concentration(5e14 * h, "500c", 0.4, model="ishiyama21")
    m200, r200, c200 = mass_defs.changeMassDefinition(5e14 * h, c500, 0.4, "500c", "200c")
    assert halo.c500c == pytest.approx(c500, rel=1e-10)
    assert halo.m200c == pytest.approx(m200 / h, rel=1e-10)
    assert halo.r200c == pytest.approx(r200 / h / 1000, rel=1e-10)
    assert halo.rs == pytest.approx(halo.r200c / halo.c200c)
    # FACTS.md: for Planck18, c500c = 2.66, M200c = 7.20e14, c200c = 4.08
    assert 2.4 < halo.c500c < 2.9 and 3.7 < halo.c200c < 4.4
    assert 1.3 < halo.m200c / 5e14 < 1.6


def test_nfw_halo_follows_the_cosmology():
    other = FlatLambdaCDM(H0=67.7, Om0=0.31, Ob0=0.049)
    halo = cosmo.nfw_halo(5e14, 0.4, cosmology=other)
    from colossus.cosmology import cosmology as ccosmo

    assert ccosmo.getCurrent().H0 == pytest.approx(67.7)
    # the M200c/M500c ratio depends on c only; the radius on rho_c(z) of this cosmology
    rho = other.critical_density(0.4).to_value("Msun / Mpc3")
    assert 4 / 3 * math.pi * halo.r200c**3 * 200 * rho == pytest.approx(halo.m200c, rel=1e-6)
    with pytest.raises(ParameterError, match="flat"):
        cosmo.nfw_halo(5e14, 0.4, cosmology=LambdaCDM(H0=70, Om0=0.3, Ode0=0.6))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: cosmo.r500(-1e14, 0.3), "m500"),
        (lambda: cosmo.r500(1e14, float("nan")), "z"),
        (lambda: cosmo.m500(-1.0, 0.3), "r500"),
        (lambda: cosmo.sigma_crit(0.5, 0.5), "z_source"),
        (lambda: cosmo.sigma_crit(0.5, 0.3), "z_source"),
        (lambda: cosmo.sigma_to_theta_e(-5.0, 0.3, 1.0), "sigma_kms"),
        (lambda: cosmo.velocity_dispersion(0.0), "stellar_mass"),
        (lambda: cosmo.velocity_dispersion(1e10, relation="x"), "relation"),
        (lambda: cosmo.nfw_halo(float("nan"), 0.3), "m500"),
        (lambda: cosmo.r500(np.ones(3), np.ones(2) * 0.3), "m500"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ParameterError, match=f"'?{name}'?"):
        call()


# --- astropy Quantities --------------------------------------------------------------------


def test_r500_converts_a_mass_quantity_instead_of_stripping_its_unit():
    import astropy.units as u

    # 6e44 kg is 3.017e14 Msun: the same radius as the plain number in Msun, not the 1.15e10
    # Mpc of a mass read as 6e44 Msun
    expected = cosmo.r500(6e44 / u.Msun.to(u.kg), 0.3)
    assert cosmo.r500(6e44 * u.kg, 0.3) == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 1.5
    assert isinstance(cosmo.r500(3e14 * u.Msun, 0.3), float)


def test_quantities_of_every_cosmology_function():
    import astropy.units as u
    from astropy.cosmology import units as cu

    r = cosmo.r500(1e14, 0.3)
    assert cosmo.m500(r * 1000 * u.kpc, 0.3) == pytest.approx(1e14, rel=1e-12)
    assert cosmo.sigma_to_theta_e(250 * u.km / u.s, 0.4 * cu.redshift, 2.0) == pytest.approx(
        cosmo.sigma_to_theta_e(250.0, 0.4, 2.0), rel=1e-12
    )
    assert cosmo.velocity_dispersion(1e11 * u.Msun) == cosmo.velocity_dispersion(1e11)
    d = cosmo.angular_diameter_distances(0.4 * u.dimensionless_unscaled, 2.0)
    assert d == cosmo.angular_diameter_distances(0.4, 2.0)
    sigmas = np.array([150.0, 250.0]) * u.km / u.s
    np.testing.assert_allclose(
        cosmo.sigma_to_theta_e(sigmas, 0.4, 2.0), cosmo.sigma_to_theta_e(sigmas.value, 0.4, 2.0)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda u: cosmo.r500(6e44 * u.m, 0.3), r"'m500' parameter of r500 must be in Msun"),
        (lambda u: cosmo.m500(1 * u.Msun, 0.3), r"'r500' parameter of m500 must be in Mpc"),
        (lambda u: cosmo.r500(1e14, 0.3 * u.km), r"'z' parameter of r500 must be dimensionless"),
        (
            lambda u: cosmo.sigma_to_theta_e(250 * u.km, 0.4, 2.0),
            r"'sigma_kms' .* must be in km/s .* Got a Quantity in km \(length\)",
        ),
        (lambda u: cosmo.nfw_halo(5e14 * u.Mpc, 0.4), r"'m500' parameter of nfw_halo"),
    ],
)
def test_incompatible_quantities_are_refused_naming_the_units(call, message):
    import astropy.units as u

    with pytest.raises(ParameterError, match=message):
        call(u)
