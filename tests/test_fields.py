import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.fields import (
    CONVOLUTION_ERROR,
    RED_SEQUENCE,
    FieldConfig,
    SyntheticClusterField,
)
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


# --- the realistic sky: BCG, ICL, red sequence, blue members ----------------------------------
QUIET = {"field_density_r24": 0.0, "star_density": 0.0, "confuser_rate": 0.0}


def test_paper_preset_reproduces_the_previous_field():
    """Numbers of the seed-7 field drawn before the realistic sky existed (same stream)."""
    from clusterlens.mock import preset_config

    paper = preset_config("paper")
    f = SyntheticClusterField(
        redshift=0.35, m500=4e14, size=201, conditions=paper.observation.nominal, config=paper.sky
    ).draw(seed=7)
    assert len(f.members) == 11 and len(f.field_galaxies) == 15 and len(f.stars) == 0
    assert f.members["mag_r"][0] == pytest.approx(17.514334640410556, abs=1e-9)
    np.testing.assert_allclose(
        f.noiseless.astype(float).sum(axis=(1, 2)),
        [30.605363080190727, 121.56459912946593, 239.5996238011212],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        f.image[:, 100, 100], [0.08505778759717941, 0.3946409523487091, 0.8402063250541687],
        rtol=1e-4,
    )  # fmt: skip
    assert f.confusers == () and not f.mask.any() and not f.members["is_blue"].any()


def _abs_mag_r(members, fld):
    dm = float(fld.cosmology.distmod(fld.redshift).value)
    return np.asarray(members["mag_z"]) - dm + RED_SEQUENCE[0, 2]


def test_bcg_size_follows_the_luminosity_size_relation():
    from astropy.cosmology import FlatLambdaCDM

    cfg, cosmo = FieldConfig(bcg_re_scatter_dex=0.1, **QUIET), FlatLambdaCDM(H0=70.0, Om0=0.3)
    log_re, abs_r = [], []
    for i, log_m in enumerate(np.linspace(13.7, 15.2, 40)):
        fld = SyntheticClusterField(
            redshift=0.3, m500=10**log_m, richness=0, size=48, config=cfg, cosmology=cosmo
        )
        m = fld.draw(i).members
        d_a_kpc = float(fld.cosmology.angular_diameter_distance(0.3).value) * 1e3
        log_re.append(np.log10(m["r_e"][0] / 206264.806 * d_a_kpc))
        abs_r.append(_abs_mag_r(m, fld)[0])
    slope, icpt = np.polyfit(np.array(abs_r) + 23.5, log_re, 1)
    # bigger when brighter (more negative M_r), at the configured slope and pivot
    assert slope == pytest.approx(cfg.bcg_log_re_per_mag, abs=0.1)
    assert icpt == pytest.approx(cfg.bcg_log_re_pivot, abs=0.08)
    resid = np.asarray(log_re) - (icpt + slope * (np.array(abs_r) + 23.5))
    assert resid.std() == pytest.approx(cfg.bcg_re_scatter_dex, rel=0.35)
    assert np.corrcoef(abs_r, log_re)[0, 1] < -0.6


def test_icl_holds_the_configured_fraction_of_the_light():
    from clusterlens.observe.photometry import mag_to_nanomaggies

    cfg = FieldConfig(
        icl_fraction_range=(0.25, 0.25), icl_r_e_kpc_range=(40.0, 40.0), icl_sersic_n=1.0,
        bcg_sersic_n_mean=4.0, bcg_sersic_n_sigma=0.0, bcg_re_scatter_dex=0.0, **QUIET,
    )  # fmt: skip
    fld = SyntheticClusterField(redshift=1.0, m500=3e14, richness=0, size=401, config=cfg)
    f = fld.draw(3)
    assert len(f.members) == 1 and f.members.meta["icl_fraction"] == 0.25
    bcg = mag_to_nanomaggies(np.array([f.members[f"mag_{b}"][0] for b in "grz"]))
    total = f.noiseless.astype(float).sum(axis=(1, 2))
    np.testing.assert_allclose(1.0 - bcg / total, 0.25, atol=0.02)
    # the envelope alone (same stream without it) holds 1/3 of the BCG's flux, with the
    # configured half-light radius (40 kpc = 5.0" at z = 1; circular apertures, so loosely)
    off = FieldConfig(**{**cfg.__dict__, "icl_fraction_range": (0.0, 0.0)})
    lone = SyntheticClusterField(redshift=1.0, m500=3e14, richness=0, size=401, config=off)
    icl = (f.noiseless - lone.draw(3).noiseless).astype(float)[1]
    assert icl.sum() == pytest.approx(bcg[1] / 3.0, rel=0.03)
    r = np.hypot(*(np.indices((401, 401)) - 200.0)).ravel() * 0.262
    order = np.argsort(r)
    cum = np.cumsum(icl.ravel()[order])
    r_half = r[order][np.searchsorted(cum, 0.5 * cum[-1])]
    d_a_kpc = float(fld.cosmology.angular_diameter_distance(1.0).value) * 1e3
    assert r_half == pytest.approx(40.0 / d_a_kpc * 206264.806, rel=0.2)


def test_red_sequence_colours_at_the_cluster_redshift():
    z = 0.45
    fld = SyntheticClusterField(redshift=z, m500=8e14, size=253, config=FieldConfig(**QUIET))
    res_gr, res_rz, blue_gr = [], [], []
    cfg = fld.config
    for s in range(4):
        m = fld.draw(s).members
        red = ~np.asarray(m["is_blue"])
        tilt = cfg.red_sequence_tilt * (m["mag_z"] - m["mag_z"][0])
        gr = np.asarray(m["mag_g"] - m["mag_r"])
        rz = np.asarray(m["mag_r"] - m["mag_z"])
        res_gr += list((gr - tilt)[red] - np.interp(z, RED_SEQUENCE[:, 0], RED_SEQUENCE[:, 1]))
        res_rz += list((rz - tilt)[red] - np.interp(z, RED_SEQUENCE[:, 0], RED_SEQUENCE[:, 2]))
        blue_gr += list(gr[~red])
    assert len(res_gr) > 60 and len(blue_gr) > 3
    for res in (res_gr, res_rz):
        assert abs(np.mean(res)) < 3 * cfg.colour_scatter / np.sqrt(len(res)) + 0.005
        assert np.std(res) == pytest.approx(cfg.colour_scatter, rel=0.3)
    # the blue members sit well below the red sequence
    assert np.mean(blue_gr) < np.interp(z, RED_SEQUENCE[:, 0], RED_SEQUENCE[:, 1]) - 0.5


@pytest.mark.parametrize("z", [0.2, 0.7])
def test_blue_fraction_follows_redshift_and_radius(z):
    cfg = FieldConfig(blue_fraction_core=0.05, blue_fraction_dz=0.5, blue_fraction_radial=1.5)
    cfg = FieldConfig(**{**cfg.__dict__, **QUIET})
    fld = SyntheticClusterField(redshift=z, m500=1e15, size=301, config=cfg)
    n_blue, expected, var = 0, 0.0, 0.0
    for s in range(4):
        m = fld.draw(s).members
        sat = ~np.asarray(m["is_bcg"]) & (np.log10(m["stellar_mass"]) <= 11.0)
        r = np.hypot(m["x"], m["y"])[sat] / m.meta["r500_arcsec"]
        p = np.minimum(0.05 + 0.5 * z + 1.5 * np.minimum(r, 1.0), cfg.blue_fraction_max)
        n_blue += int(np.sum(m["is_blue"][sat]))
        expected += p.sum()
        var += (p * (1 - p)).sum()
    assert abs(n_blue - expected) < 4 * np.sqrt(var) + 1


def test_same_seed_same_field_with_confusers():
    f = SyntheticClusterField(redshift=0.4, m500=3e14, size=96)
    a = f.draw(5, hard_negative=True)
    b = f.draw(np.random.default_rng(5), hard_negative=True)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert [c.kind for c in a.confusers] == [c.kind for c in b.confusers]
    assert a.hard_negative and len(a.confusers) >= 1


# --- confuser painters ------------------------------------------------------------------------
def test_diffraction_spikes_lie_along_the_configured_angles():
    from clusterlens.confusers import draw_confusers, paint_confusers

    (star,) = draw_confusers(np.random.default_rng(0), ["bright_star"], half_width=30.0)
    star.x = star.y = 0.0
    star.mag_r = 12.0
    star.params["spike_length"] = 20.0
    image = np.zeros((3, 201, 201))
    paint_confusers(image, [star], pixel_scale=0.262, spike_angles=(30.0, 120.0))
    yy, xx = np.indices((201, 201)) - 100.0
    r = np.hypot(xx, yy)
    ang = np.degrees(np.arctan2(yy, xx)) % 360.0
    ring = (r > 25) & (r < 60)  # outside the halo's core, inside the spikes

    def wedge(a):
        d = np.abs((ang - a + 180.0) % 360.0 - 180.0)
        return image[1][ring & (d < 3.0)].mean()

    on = [wedge(a) for a in (30.0, 120.0, 210.0, 300.0)]
    off = [wedge(a) for a in (0.0, 15.0, 75.0, 165.0, 255.0, 345.0)]  # the halo alone
    assert min(on) > 4.0 * max(off)
    assert np.ptp(on) < 0.2 * np.mean(on)  # the four spikes are alike


def test_masks_and_saturation_are_flagged_and_constant():
    cfg = FieldConfig(**QUIET)
    fld = SyntheticClusterField(redshift=0.3, m500=3e14, size=161, config=cfg)
    seen = set()
    for s in range(12):
        f = fld.draw(s, confusers=["mask"])
        (m,) = f.confusers
        seen.add(m.params["sub"])
        assert f.mask.any()
        values = np.unique(f.image[f.mask])
        expect = m.params.get("level", 0.0)
        np.testing.assert_array_equal(values, [np.float32(expect)])
        np.testing.assert_array_equal(f.noiseless[f.mask], f.image[f.mask])
    assert seen == {"blank", "band_gap", "bleed"}
    # a bright star: its core is clipped at the saturation level, the trail runs along y
    for s in range(30):
        f = fld.draw(s, confusers=["bright_star"])
        if f.confusers[0].mag_r < 13.0 and abs(f.confusers[0].x) < 10:
            break
    assert f.mask.any()
    assert np.all(f.image[f.mask] == np.float32(cfg.saturation_level))
    rows, cols = np.nonzero(f.mask[1])
    assert np.ptp(rows) > 2 * np.ptp(cols)


def test_every_confuser_kind_paints_its_flux_where_it_is():
    from clusterlens.confusers import CONFUSER_KINDS, draw_confusers, paint_confusers
    from clusterlens.observe.photometry import mag_to_nanomaggies

    rng = np.random.default_rng(2)
    for kind in CONFUSER_KINDS[:-1]:
        (c,) = draw_confusers(rng, [kind], half_width=30.0)
        image = np.zeros((3, 301, 301))
        paint_confusers(image, [c], pixel_scale=0.262)
        total = image[1].sum()
        extra = (
            1.0
            if kind != "ring" or c.params["on_bcg"]
            else 1.0 + 10 ** (-0.4 * (c.params["core_mag"] - c.mag_r))
        )
        assert total == pytest.approx(mag_to_nanomaggies(c.mag_r) * extra, rel=0.03), kind
        yy, xx = np.indices(image[1].shape) - 150.0
        cx, cy = (image[1] * xx).sum() / total, (image[1] * yy).sum() / total
        tol = 12.0 if kind == "merger" else 2.0  # a merger's tails pull its centroid
        assert np.hypot(cx - c.x / 0.262, cy - c.y / 0.262) < tol, kind
    with pytest.raises(ParameterError, match="'confusers'"):
        SyntheticClusterField(redshift=0.3, m500=3e14, size=32).draw(0, confusers=["comet"])


def test_arclets_are_tangential_around_the_bcg():
    from clusterlens.confusers import draw_confusers, paint_confusers

    rng = np.random.default_rng(4)
    n_tangential = 0
    for _ in range(10):
        (c,) = draw_confusers(rng, ["arclet"], half_width=30.0)
        image = np.zeros((1, 301, 301))
        paint_confusers(np.concatenate([image] * 3), [c], pixel_scale=0.262)
        img = np.zeros((3, 301, 301))
        paint_confusers(img, [c], pixel_scale=0.262)
        w = img[1]
        yy, xx = np.indices(w.shape) - 150.0
        dx, dy = xx - c.x / 0.262, yy - c.y / 0.262
        # second moments: the long axis vs the radial direction from the BCG
        mxx, myy, mxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
        long_axis = 0.5 * np.degrees(np.arctan2(2 * mxy, mxx - myy))
        radial = np.degrees(np.arctan2(c.y, c.x))
        delta = abs((long_axis - radial + 90.0) % 180.0 - 90.0)
        n_tangential += delta > 50.0
    assert n_tangential >= 8


# --- the sky: hard negatives and base rates ---------------------------------------------------
def _small_sky(**sky):
    from clusterlens.mock.config import ImageConfig, MockConfig
    from clusterlens.mock.sky import SyntheticSky

    cfg = MockConfig(image=ImageConfig(cutout_size=16, crop_size=16), sky=FieldConfig(**sky))
    return SyntheticSky(cfg)


def test_hard_negative_fraction_and_base_rate_are_honoured():
    from clusterlens.confusers import ARC_LIKE_KINDS

    sky = _small_sky(hard_negative_fraction=0.3, confuser_rate=0.2)
    rng = np.random.default_rng(0)
    n = 100  # end to end through the sky (loose); the rule itself is tested tightly below
    neg = [sky.draw(rng, "non-lens").sky_params for _ in range(n)]
    pos = [sky.draw(rng, "lens").sky_params for _ in range(n)]

    def close(frac, p):
        return abs(frac - p) < 4.0 * np.sqrt(p * (1 - p) / n)

    hard = [p["sky_hard_negative"] for p in neg]
    assert close(np.mean(hard), 0.3)
    assert close(np.mean([p["sky_n_confusers"] > 0 for p in neg]), 1 - 0.8 * 0.7)
    assert not any(p["sky_hard_negative"] for p in pos)
    assert close(np.mean([p["sky_n_confusers"] > 0 for p in pos]), 0.2)
    for p in neg:
        if p["sky_hard_negative"]:
            assert any(k in ARC_LIKE_KINDS for k in p["sky_confusers"].split(","))
        kinds = [k for k in p["sky_confusers"].split(",") if k]
        assert len(kinds) == p["sky_n_confusers"] == sum(p[f"sky_n_{k}"] for k in set(kinds))


def test_confuser_rates_over_many_fields():
    from clusterlens.confusers import ARC_LIKE_KINDS

    cfg = FieldConfig(confuser_rate=0.35, confuser_mean_count=2.0)
    fld = SyntheticClusterField(redshift=0.3, m500=3e14, size=32, config=cfg)
    rng = np.random.default_rng(7)
    n = 4000
    plain = [fld._confuser_kinds(rng, False, None) for _ in range(n)]
    hard = [fld._confuser_kinds(rng, True, None) for _ in range(n)]
    tol = 4.0 * np.sqrt(0.25 / n)
    assert abs(np.mean([len(k) > 0 for k in plain]) - 0.35) < tol
    with_some = [k for k in plain if k]
    assert np.mean([len(k) for k in with_some]) == pytest.approx(2.0, abs=0.08)
    assert all(any(x in ARC_LIKE_KINDS for x in k) for k in hard)
    # kinds follow the weights
    flat = [x for k in with_some for x in k]
    w = np.asarray(cfg.confuser_weights) / sum(cfg.confuser_weights)
    for kind, p in zip(("spiral", "arclet", "mask"), (w[0], w[4], w[6]), strict=True):
        assert np.mean([x == kind for x in flat]) == pytest.approx(p, abs=0.03)


def test_paper_preset_sky_has_no_confusers_and_dataset_records_the_sky():
    from clusterlens.mock import preset_config
    from clusterlens.mock.dataset import make_image
    from clusterlens.mock.simulator import MockLensSimulator
    from clusterlens.mock.sky import SyntheticSky

    paper = SyntheticSky(preset_config("paper"))
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = paper.draw(rng, "non-lens").sky_params
        assert p["sky_n_confusers"] == 0 and not p["sky_hard_negative"]
        assert p["sky_icl_fraction"] == 0.0 and p["sky_n_blue_members"] == 0
    sky = _small_sky(hard_negative_fraction=1.0)
    sim = MockLensSimulator(sky.config)
    _, label, params = make_image(3, seed=1, n_positive=0, simulator=sim, sky=sky)
    assert label == 0 and params["sky_hard_negative"] and params["sky_n_confusers"] >= 1


def test_sky_table_round_trips_and_bad_values_name_the_key():
    from clusterlens.mock.config import MockConfig, config_from_dict, config_to_dict

    cfg = MockConfig(sky=FieldConfig(spike_angles=(45.0, 135.0), hard_negative_fraction=0.7))
    assert config_from_dict(config_to_dict(cfg)) == cfg
    for data, words in [
        ({"sky": {"confuser_rate": 1.5}}, ["sky", "confuser_rate"]),
        ({"sky": {"hard_negative_fraction": -0.1}}, ["sky", "hard_negative_fraction"]),
        ({"sky": {"confuser_weights": [1, 2]}}, ["sky", "confuser_weights"]),
        ({"sky": {"bcg_size_relation": "lauer"}}, ["sky", "bcg_size_relation"]),
        ({"sky": {"icl_fraction_range": [0.4, 0.1]}}, ["sky", "icl_fraction_range"]),
        ({"sky": {"spike_anglez": [0]}}, ["sky.spike_anglez"]),
    ]:
        with pytest.raises(ParameterError) as err:
            config_from_dict(data)
        for w in words:
            assert w in str(err.value)


@pytest.mark.parametrize("confusers", [None, ["arclet", "spiral"], ["bright_star", "mask"]])
def test_trimmed_field_is_the_crop_of_the_whole_field(confusers):
    # the mock sky keeps only the crop of a field drawn with its PSF margin: the same pixels
    # (to rounding) as cropping the whole field, also when masks and saturated stars are laid
    # on the whole field first
    fld = SyntheticClusterField(redshift=0.3, m500=5e14, size=97)
    whole = fld.draw(11, confusers=confusers)
    trimmed = fld.draw(11, confusers=confusers, trim=20)
    kept = (slice(None), slice(20, 77), slice(20, 77))
    assert trimmed.image.shape == trimmed.noiseless.shape == (3, 57, 57)
    # both within CONVOLUTION_ERROR of the exact convolution (float32 FFTs of other lengths)
    tol = 2.0 * CONVOLUTION_ERROR * float(fld.conditions.sky_sigma.min())
    for name in ("image", "noiseless"):
        np.testing.assert_allclose(
            getattr(trimmed, name), getattr(whole, name)[kept], rtol=1e-6, atol=tol
        )
    np.testing.assert_array_equal(trimmed.mask, whole.mask[kept])
    assert trimmed.members.pformat() == whole.members.pformat()
    with pytest.raises(ParameterError, match="'trim'"):
        fld.draw(11, trim=49)
