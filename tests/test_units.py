"""astropy Quantities at the public API edge: converted to the documented plain unit, or
refused with a ParameterError naming the parameter, the unit expected and the unit given."""

import astropy.units as u
import numpy as np
import pytest

from clusterlens import profiles
from clusterlens._validation import as_value
from clusterlens.errors import ParameterError

# --- the helper ------------------------------------------------------------------------------


def test_as_value_converts_quantities_and_passes_plain_numbers_through():
    assert as_value(1 * u.arcmin, "arcsec", "x", "f") == pytest.approx(60.0)
    assert as_value(2.5, "arcsec", "x", "f") == 2.5
    np.testing.assert_allclose(as_value([1, 2] * u.deg, "arcsec", "x", "f"), [3600, 7200])
    assert as_value((1 * u.arcsec, 1 * u.arcmin), "arcsec", "x", "f") == (1.0, 60.0)
    assert as_value(22 * u.ABmag, ("mag", "mag(AB)"), "m", "f") == 22.0
    assert as_value(22 * u.mag, ("mag", "mag(AB)"), "m", "f") == 22.0
    assert as_value(0.262 * u.arcsec / u.pix, ("arcsec / pix", "arcsec"), "s", "f") == 0.262


def test_as_value_refusal_names_parameter_owner_and_both_units():
    with pytest.raises(ParameterError) as info:
        as_value(3 * u.kpc, "arcsec", "theta_e", "SIE")
    text = str(info.value)
    assert "'theta_e' parameter of SIE" in text
    assert "in arcsec (angle)" in text
    assert "Got a Quantity in kpc (length)" in text
    with pytest.raises(ParameterError, match=r"'t\[1\]' parameter of f must be in arcsec"):
        as_value((1 * u.arcsec, 1 * u.kg), "arcsec", "t", "f")


# --- profiles ------------------------------------------------------------------------------


def test_profile_constructors_convert_angles():
    from clusterlens.profiles import DPIE, ENFW, SIE, DPIEPopulation, EllipticalNFW, SIEPopulation

    sie = SIE(1.5 * u.arcsec, 0.8, 0.5 * u.rad, x0=0.5 * u.arcmin)
    assert (sie.theta_e, sie.phi, sie.x0) == pytest.approx((1.5, np.degrees(0.5), 30.0))
    assert sie == SIE(1.5, 0.8, np.degrees(0.5), x0=30.0)
    dpie = DPIE(1.0 * u.arcsec, 100 * u.mas, 10 * u.arcsec)
    assert (dpie.r_core, dpie.r_cut) == pytest.approx((0.1, 10.0))
    pop = SIEPopulation([1.0, 2.0] * u.arcsec, 1.0, 0.0, [0.0, 1.0] * u.arcmin, 0.0)
    np.testing.assert_allclose(pop.x0, [0.0, 60.0])
    dpop = DPIEPopulation([1.0] * u.arcsec, 0.1, 1 * u.arcmin, 1.0, 0.0, 0.0, 0.0)
    assert dpop.r_cut[0] == pytest.approx(60.0)
    for cls in (ENFW, EllipticalNFW):
        halo = cls(1 * u.arcmin, 20 * u.arcsec, 0.8, 10 * u.deg)
        assert (halo.rs, halo.alpha_rs, halo.phi) == pytest.approx((60.0, 20.0, 10.0))


def test_profile_from_physical_values():
    from clusterlens.profiles import ENFW, DPIEPopulation, SIEPopulation, nfw_angles

    a = ENFW.from_m500(5e14 * u.Msun, 0.4, 2.0, c500c=3.0)
    assert a == ENFW.from_m500(5e14, 0.4, 2.0, c500c=3.0)
    assert nfw_angles(1e15 * u.Msun, 4.0, 0.4, 2.0) == nfw_angles(1e15, 4.0, 0.4, 2.0)
    s = SIEPopulation.from_sigma([200.0] * u.km / u.s, 0.0, 0.0, 0.4, 2.0)
    assert s.theta_e[0] == SIEPopulation.from_sigma([200.0], 0.0, 0.0, 0.4, 2.0).theta_e[0]
    d = DPIEPopulation.from_sigma([0.2] * u.km / u.ms, 0.0, 0.0, 0.4, 2.0, r_cut_kpc=0.04 * u.Mpc)
    ref = DPIEPopulation.from_sigma([200.0], 0.0, 0.0, 0.4, 2.0, r_cut_kpc=40.0)
    np.testing.assert_allclose(d.r_cut, ref.r_cut)
    np.testing.assert_allclose(d.theta_e, ref.theta_e)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: profiles.SIE(1 * u.kpc), "'theta_e'.*SIE"),
        (
            lambda: profiles.SIE(1.0, phi=1 * u.m),
            r"'phi' parameter of SIE must be in deg \(angle\).*m \(length\)",
        ),
        (
            lambda: profiles.NFW(1 * u.Mpc, 2.0),
            r"'rs' parameter of NFW must be in arcsec",
        ),
        (
            lambda: profiles.DPIE(1.0, 0.1, 2 * u.kpc),
            r"'r_cut' parameter of DPIE",
        ),
        (
            lambda: profiles.SIE(1.0, q=0.5 * u.deg),
            r"'q' parameter of SIE must be dimensionless",
        ),
    ],
)
def test_profiles_refuse_incompatible_units(make, message):
    with pytest.raises(ParameterError, match=message):
        make()


# --- observing and the mock configuration ------------------------------------------------


def test_observe_takes_arcsec_and_magnitudes():
    from clusterlens.observe import (
        ConditionsDistribution,
        GaussianPSF,
        MoffatPSF,
        SurveyConditions,
        mag_to_nanomaggies,
    )

    assert mag_to_nanomaggies(22.5 * u.ABmag) == pytest.approx(1.0)
    assert mag_to_nanomaggies(20 * u.mag) == mag_to_nanomaggies(20.0)
    assert GaussianPSF(1.3 * u.arcsec).fwhm == 1.3
    assert MoffatPSF(1300 * u.mas, 3.0).fwhm == pytest.approx(1.3)
    c = SurveyConditions(
        pixel_scale=0.262 * u.arcsec / u.pix,
        psf_fwhm=[1.3, 1.2, 1.1] * u.arcsec,
        depth=(24.0 * u.ABmag, 23.4 * u.ABmag, 22.5 * u.ABmag),
        reference_r_e=450 * u.mas,
    )
    assert c == SurveyConditions(psf_fwhm=(1.3, 1.2, 1.1), depth=(24.0, 23.4, 22.5))
    d = ConditionsDistribution(survey="fixed", psf_fwhm=[1.3, 1.2, 1.1] * u.arcsec)
    assert d.psf_fwhm == pytest.approx((1.3, 1.2, 1.1))
    with pytest.raises(ParameterError, match=r"'psf_fwhm\[0\]' parameter of SurveyConditions"):
        SurveyConditions(psf_fwhm=(1.3 * u.kpc, 1.2, 1.1))
    with pytest.raises(ParameterError, match=r"'fwhm' parameter of GaussianPSF must be in arcsec"):
        GaussianPSF(1.3 * u.s)
    with pytest.raises(ParameterError, match=r"'pixel_scale' .* in arcsec / pix"):
        SurveyConditions(pixel_scale=0.262 * u.kg)


def test_mock_config_values_from_python():
    from clusterlens.mock.config import (
        BCGConfig,
        MembersConfig,
        MockConfig,
        SelectionConfig,
        config_to_dict,
    )

    members = MembersConfig(sigma_star=180 * u.km / u.s, r_cut_star_kpc=0.045 * u.Mpc)
    assert (members.sigma_star, members.r_cut_star_kpc) == pytest.approx((180.0, 45.0))
    assert BCGConfig(max_offset=0.05 * u.arcmin).max_offset == pytest.approx(3.0)
    assert SelectionConfig(min_einstein_radius=5 * u.arcsec).min_einstein_radius == 5.0
    # the configuration written out (TOML, dataset metadata) holds plain numbers
    assert config_to_dict(MockConfig(members=members))["members"]["sigma_star"] == 180.0
    with pytest.raises(ParameterError, match=r"'sigma_star' parameter of MembersConfig"):
        MembersConfig(sigma_star=180 * u.kpc)


# --- catalogues and grading ----------------------------------------------------------------


def test_crossmatch_and_grading_inputs():
    from astropy.table import Table

    from clusterlens.loop.grading import arc_length_width, count_members
    from clusterlens.loop.grading import einstein_radius_from_points as r_ein
    from clusterlens.survey import crossmatch

    a = Table({"ra": [10.0], "dec": [0.0]})
    b = Table({"ra": [10.0 + 3 / 3600], "dec": [0.0]})
    assert len(crossmatch(a, b, radius=0.1 * u.arcmin).matched) == 1
    assert len(crossmatch(a, b, radius=1 * u.arcsec).matched) == 0
    with pytest.raises(ParameterError, match=r"'radius' parameter of crossmatch must be in arcsec"):
        crossmatch(a, b, radius=5 * u.kpc)
    cat = Table({"ra": [10.0, 10.001], "dec": [0.0, 0.0], "z": [0.3, 0.3]})
    assert count_members(cat, 10 * u.deg, 0.0, 0.3, radius_arcsec=0.5 * u.arcmin) == 2
    assert r_ein([[3.0, 4.0]] * u.arcsec) == 5.0
    mask = np.zeros((9, 9), bool)
    mask[4, 1:8] = True
    assert arc_length_width(mask, pixel_scale=0.5 * u.arcsec / u.pix) == arc_length_width(
        mask, pixel_scale=0.5
    )
    with pytest.raises(ParameterError, match=r"'radius_arcsec' parameter of count_members"):
        count_members(cat, 10.0, 0.0, 0.3, radius_arcsec=5 * u.kpc)
