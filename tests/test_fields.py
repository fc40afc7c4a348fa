import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.fields import RED_SEQUENCE, FieldConfig, SyntheticClusterField
from clusterlens.observe import SurveyConditions


@pytest.fixture(scope="module")
def field():
    return SyntheticClusterField(redshift=0.35, m500=4e14, size=201).draw(seed=7)


def test_field_has_the_right_shape_dtype_and_units(field):
    assert field.image.shape == (3, 201, 201) and field.image.dtype == np.float32
    assert field.noiseless.shape == (3, 201, 201) and field.noiseless.dtype == np.float32
    m = field.members
    for col in ("x", "y", "stellar_mass", "q", "phi", "mag_g", "mag_r", "mag_z", "is_bcg"):
        assert col in m.colnames
    assert str(m["x"].unit) == "arcsec" and str(m["stellar_mass"].unit) == "solMass"
    half = 0.5 * 201 * 0.262
    assert (np.abs(m["x"]) < half).all() and (np.abs(m["y"]) < half).all()
    assert np.isfinite(field.image).all()


def test_bcg_is_central_massive_brightest_and_red(field):
    m = field.members
    bcg = m[m["is_bcg"]]
    assert len(bcg) == 1 and bcg["x"][0] == 0.0 and bcg["y"][0] == 0.0
    assert 11.3 <= np.log10(bcg["stellar_mass"][0]) <= 12.3
    assert bcg["mag_z"][0] == m["mag_z"].min()
    # red-sequence colour at z = 0.35, measured on the image in a central aperture
    c = 100
    flux = field.noiseless[:, c - 3 : c + 4, c - 3 : c + 4].sum(axis=(1, 2)).astype(float)
    g_r = -2.5 * np.log10(flux[0] / flux[1])
    expected = np.interp(0.35, RED_SEQUENCE[:, 0], RED_SEQUENCE[:, 1])
    assert g_r == pytest.approx(expected, abs=0.15)
    assert g_r > 1.3
    # member stellar masses are plausible: Table 1 of the paper spans 10^8 to 10^12.7
    assert 8.0 <= np.log10(m["stellar_mass"]).min() and np.log10(m["stellar_mass"]).max() < 12.7


def test_same_seed_same_field_other_seed_other_field():
    f = SyntheticClusterField(redshift=0.5, m500=2e14, size=96)
    a, b, c = f.draw(3), f.draw(np.random.default_rng(3)), f.draw(4)
    np.testing.assert_array_equal(a.image, b.image)
    assert len(a.members) == len(b.members)
    assert not np.array_equal(a.image, c.image)


def test_sky_noise_matches_the_survey_depth(field):
    resid = (field.image - field.noiseless).astype(float)
    sigma = SurveyConditions().sky_sigma
    # robust scatter (MAD) of the residual is dominated by the sky
    mad = 1.4826 * np.median(
        np.abs(resid - np.median(resid, axis=(1, 2), keepdims=True)), axis=(1, 2)
    )
    np.testing.assert_allclose(mad, sigma, rtol=0.05)


def test_richness_and_mass_are_interchangeable():
    cfg = FieldConfig()
    f = SyntheticClusterField(redshift=0.3, richness=cfg.richness_pivot)
    assert f.m500 == pytest.approx(cfg.m500_pivot)
    g = SyntheticClusterField(redshift=0.3, m500=cfg.m500_pivot)
    assert g.richness == pytest.approx(cfg.richness_pivot)
    assert 100 < g.r500_arcsec < 300  # ~0.7 Mpc at z = 0.3


def test_richer_clusters_have_more_members():
    rich = SyntheticClusterField(redshift=0.6, richness=120, size=371)
    poor = SyntheticClusterField(redshift=0.6, richness=10, size=371)
    n_rich = np.mean([len(rich.draw(s).members) for s in range(3)])
    n_poor = np.mean([len(poor.draw(s).members) for s in range(3)])
    assert n_rich > 3 * n_poor


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"redshift": -0.1, "m500": 1e14}, "'redshift'"),
        ({"redshift": float("nan"), "m500": 1e14}, "'redshift'"),
        ({"redshift": 0.3}, "m500"),
        ({"redshift": 0.3, "m500": 1e20}, "'m500'"),
        ({"redshift": 0.3, "m500": 1e14, "size": 8}, "'size'"),
        ({"redshift": 0.3, "m500": 1e14, "config": {}}, "'config'"),
    ],
)
def test_bad_descriptions_raise_named_errors(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SyntheticClusterField(**kwargs)


def test_bad_field_config_names_the_field():
    with pytest.raises(ParameterError, match="'member_concentration'"):
        FieldConfig(member_concentration=-1.0)
    with pytest.raises(ParameterError, match="member_log_mstar_min"):
        FieldConfig(member_log_mstar_min=12.0, member_log_mstar_max=11.0)
    with pytest.raises(ParameterError, match="field_mag_range"):
        FieldConfig(field_mag_range=(25.0, 18.0))
