import math

import numpy as np
import pytest
from astropy.table import Table
from scipy import integrate
from scipy.special import gammainc

from clusterlens.errors import ParameterError
from clusterlens.lensing import pixel_grid
from clusterlens.mock import preset_config
from clusterlens.sources import (
    PASSBANDS,
    CatalogSourcePopulation,
    Sersic,
    SmailRedshift,
    SourcePopulation,
    SourcePopulationConfig,
    StructuredSource,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
    igm_transmission,
    render_sersic,
    render_sersic_adaptive,
    sed_colours,
    sersic_b,
)

PIX = 0.262
PAPER = preset_config("paper").source  # Table 1 of the paper


@pytest.mark.parametrize("n", [0.4, 1.0, 2.5, 4.0, 8.0])
def test_b_n_puts_half_the_light_inside_r_e(n):
    b = sersic_b(n)
    assert gammainc(2 * n, b) == pytest.approx(0.5, abs=1e-12)
    # Ciotti & Bertin (1999) asymptotic series, good to ~1e-4 for n >= 1
    if n >= 1:
        assert b == pytest.approx(2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2), rel=1e-4)


@pytest.mark.parametrize("n", [0.5, 1.0, 4.0])
def test_surface_brightness_integrates_to_flux_and_half_within_r_e(n):
    # integrate the kernel's surface brightness in elliptical polar coordinates:
    # x' = R cos t / sqrt(q), y' = R sin t sqrt(q) has Jacobian R.
    s = Sersic(x=0.3, y=-0.2, r_e=0.7, n=n, q=0.55, phi=35.0, fluxes=(2.0, 3.0, 4.0))
    c, sn = math.cos(math.radians(s.phi)), math.sin(math.radians(s.phi))

    def ring(radius):
        t = np.linspace(0, 2 * np.pi, 65)[:-1]
        xp = radius * np.cos(t) / math.sqrt(s.q)
        yp = radius * np.sin(t) * math.sqrt(s.q)
        x = s.x + c * xp - sn * yp
        y = s.y + sn * xp + c * yp
        return s.surface_brightness(x, y)[1].mean() * 2 * np.pi * radius

    inner, _ = integrate.quad(ring, 0, s.r_e, limit=200)
    outer, _ = integrate.quad(ring, s.r_e, np.inf, limit=200)
    assert inner == pytest.approx(0.5 * 3.0, rel=1e-6)
    assert inner + outer == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize(
    "n, r_e", [(0.4, 0.1), (1.0, 0.05), (1.0, 0.5), (2.5, 0.3), (4.0, 0.2), (4.0, 0.05)]
)
def test_rendered_unlensed_flux_matches_requested_flux(n, r_e):
    s = Sersic(x=0.07, y=-0.04, r_e=r_e, n=n, q=0.6, phi=20.0, fluxes=(1.0, 2.5, 4.0))
    size = 41
    while float(s.enclosed_fraction(0.5 * size * PIX * math.sqrt(s.q))) < 1 - 1e-5:
        size += 40
    img = render_sersic_adaptive(s, None, shape=(size, size), pixel_scale=PIX)
    assert img.shape == (3, size, size)
    np.testing.assert_allclose(img.sum(axis=(1, 2)), s.fluxes, rtol=1e-3)


def test_half_the_rendered_flux_falls_within_r_e():
    s = Sersic(r_e=1.0, n=2.0, q=0.7, phi=-30.0, fluxes=(1.0, 1.0, 1.0))
    pix = 0.05
    img = render_sersic_adaptive(s, None, shape=(401, 401), pixel_scale=pix)[0]
    x, y = pixel_grid((401, 401), pix)
    c, sn = math.cos(math.radians(s.phi)), math.sin(math.radians(s.phi))
    xp, yp = c * x + sn * y, -sn * x + c * y
    inside = np.sqrt(s.q * xp**2 + yp**2 / s.q) < s.r_e
    assert img[inside].sum() == pytest.approx(0.5, abs=0.01)


def _sis(theta_e, x0=0.0, y0=0.0):
    def trace(x, y):
        dx, dy = x - x0, y - y0
        r = np.maximum(np.hypot(dx, dy), 1e-12)
        return x - theta_e * dx / r, y - theta_e * dy / r

    return trace


def test_adaptive_rendering_of_a_lensed_source_matches_brute_force():
    s = Sersic(x=0.4, y=0.1, r_e=0.3, n=1.5, q=0.8, phi=10.0, fluxes=(1.0, 1.0, 1.0))
    shape = (61, 61)
    trace = _sis(3.0)
    adaptive = render_sersic_adaptive(s, trace, shape=shape, pixel_scale=PIX)[0]
    x, y = pixel_grid(shape, PIX, supersample=32)
    bx, by = trace(x.ravel(), y.ravel())
    brute = render_sersic(
        s, bx.reshape(x.shape), by.reshape(x.shape), pixel_scale=PIX, supersample=32
    )[0]
    assert adaptive.sum() == pytest.approx(brute.sum(), rel=3e-3)
    # surface brightness is conserved: the total is the source flux weighted by the SIS's
    # total magnification, 2 theta_E / beta inside the caustic and 1 + theta_E / beta outside
    bx, by = pixel_grid((1600, 1600), 0.005)  # even: no sample at beta = 0
    beta = np.hypot(bx, by)
    mu = np.where(beta < 3.0, 2 * 3.0 / beta, 1 + 3.0 / beta)
    expected = (s.surface_brightness(bx, by)[0] * mu).sum() * 0.005**2
    assert adaptive.sum() == pytest.approx(expected, rel=2e-3)
    assert np.abs(adaptive - brute).max() < 0.01 * brute.max()


def test_render_sersic_block_averages_supersampled_positions():
    s = Sersic(r_e=0.8, n=1.0, fluxes=(1.0, 2.0, 3.0))
    x, y = pixel_grid((21, 21), PIX, supersample=4)
    img = render_sersic(s, x, y, pixel_scale=PIX, supersample=4)
    assert img.shape == (3, 21, 21)
    np.testing.assert_allclose(img[2], 3 * img[0])
    sb = s.surface_brightness(x, y)[0].reshape(21, 4, 21, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(img[0], sb * PIX**2)


def test_pixel_grid_is_centred_and_consistent_with_supersampling():
    x, y = pixel_grid((5, 7), 0.5)
    assert x[2, 3] == 0.0 and y[2, 3] == 0.0
    assert x[0, 4] == 0.5 and y[3, 0] == 0.5  # x along columns, y along rows
    xs, ys = pixel_grid((5, 7), 0.5, supersample=3)
    np.testing.assert_allclose(xs.reshape(5, 3, 7, 3).mean(axis=(1, 3)), x, atol=1e-12)
    np.testing.assert_allclose(ys.reshape(5, 3, 7, 3).mean(axis=(1, 3)), y, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"q": 1.3}, "'q'"),
        ({"q": 0.0}, "'q'"),
        ({"n": float("nan")}, "'n'"),
        ({"r_e": -1.0}, "'r_e'"),
        ({"fluxes": (1.0, 2.0)}, "'fluxes'"),
        ({"fluxes": (1.0, -2.0, 1.0)}, "'fluxes'"),
        ({"x": "a"}, "'x'"),
    ],
)
def test_sersic_rejects_bad_parameters_by_name(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Sersic(**kwargs)


def test_render_rejects_bad_inputs():
    s = Sersic()
    with pytest.raises(ParameterError, match="beta_x"):
        render_sersic(s, np.zeros((4, 5)), np.zeros((4, 4)), pixel_scale=PIX)
    with pytest.raises(ParameterError, match="supersample"):
        render_sersic(s, np.zeros((4, 4)), np.zeros((4, 4)), pixel_scale=PIX, supersample=0)
    with pytest.raises(ParameterError, match="ray_trace"):
        render_sersic_adaptive(s, lambda x, y: (x, y[:-1]), shape=(5, 5), pixel_scale=PIX)
    with pytest.raises(ParameterError, match="ray_trace"):
        render_sersic_adaptive(s, lambda x, y: (x * np.nan, y), shape=(5, 5), pixel_scale=PIX)
    with pytest.raises(ParameterError, match="shape"):
        render_sersic_adaptive(s, None, shape=(0, 5), pixel_scale=PIX)
    with pytest.raises(ParameterError, match="source"):
        render_sersic_adaptive("sersic", None, shape=(5, 5), pixel_scale=PIX)


def test_magnitudes_round_trip():
    s = Sersic.from_magnitudes([23.0, 22.5, 21.0], r_e=0.3)
    np.testing.assert_allclose(s.fluxes, [10 ** (-0.2), 1.0, 10**0.6])
    np.testing.assert_allclose(s.magnitudes, [23.0, 22.5, 21.0])


# --- populations ---------------------------------------------------------------------------
def test_colour_classes_come_out_one_to_one_to_two():
    t = SourcePopulation(PAPER).draw_table(8000, 123)
    gr = t["mag_g"] - t["mag_r"]
    red, blue = gr >= 1.3, gr <= 0.8
    green = ~red & ~blue
    assert (t["colour_class"][red] == "red").all()
    assert (t["colour_class"][blue] == "blue").all()
    assert (t["colour_class"][green] == "green").all()
    # binomial 4-sigma bands around 1/4, 1/4, 1/2
    for frac, p in ((red.mean(), 0.25), (green.mean(), 0.25), (blue.mean(), 0.5)):
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / 8000)


def test_every_drawn_parameter_stays_in_its_configured_range():
    cfg = PAPER
    t = SourcePopulation(cfg).draw_table(5000, 7)
    for col, dist in (
        ("mag_r", cfg.mag_r),
        ("r_e", cfg.r_e),
        ("q", cfg.q),
        ("redshift", cfg.redshift),
        ("n", cfg.sersic_n),
        ("phi", cfg.phi),
    ):
        assert dist.low <= t[col].min() and t[col].max() <= dist.high, col
    assert cfg.mag_g_range[0] <= t["mag_g"].min() and t["mag_g"].max() <= cfg.mag_g_range[1]
    assert cfg.mag_z_range[0] <= t["mag_z"].min() and t["mag_z"].max() <= cfg.mag_z_range[1]
    # Table 1's Sersic index range, and a distribution that is not the n = 1 of Collett (2015)
    assert 0.4 <= t["n"].min() and t["n"].max() <= 4.0
    assert np.median(t["n"]) == pytest.approx(1.2, rel=0.1)


@pytest.mark.parametrize("config", [PAPER, SourcePopulationConfig()], ids=["paper", "default"])
def test_population_draws_are_reproducible_and_respect_min_redshift(config):
    pop = SourcePopulation(config)
    a, b = pop.draw_table(50, 5), pop.draw_table(50, 5)
    assert all(np.array_equal(a[c], b[c], equal_nan=a[c].dtype.kind == "f") for c in a.colnames)
    src = pop.draw(np.random.default_rng(3), center=(1.0, -2.0), min_redshift=1.2)
    assert src.redshift >= 1.2
    assert (src.profile.x, src.profile.y) == (1.0, -2.0)
    assert src.as_dict()["source_redshift"] == src.redshift
    assert pop.draw_table(500, 1, min_redshift=1.0)["redshift"].min() >= 1.0


@pytest.mark.parametrize("config", [PAPER, SourcePopulationConfig()], ids=["paper", "default"])
def test_one_row_draw_is_the_first_row_of_draw_table(config):
    # the simulator draws its sources one by one without building a Table: the same values
    # and the same stream as draw_table(1, ...)[0]
    pop = SourcePopulation(config)
    for seed in range(5):
        rng_t, rng_r = np.random.default_rng(seed), np.random.default_rng(seed)
        want = pop.draw_table(1, rng_t, min_redshift=0.9)[0]
        got = pop._draw_row(rng_r, min_redshift=0.9)
        assert list(got) == want.colnames
        for name in want.colnames:
            assert got[name] == want[name] or (np.isnan(got[name]) and np.isnan(want[name]))
        assert rng_r.random() == rng_t.random()
        assert repr(pop.make_source(got, x=0.5)) == repr(pop.make_source(want, x=0.5))


def test_distributions_are_truncated_correctly():
    rng = np.random.default_rng(0)
    v = TruncatedNormal(0.0, 1.0, -0.5, 2.0).sample(rng, 20000)
    assert v.min() >= -0.5 and v.max() <= 2.0
    # mean of a standard normal truncated to [-0.5, 2]
    from scipy.stats import truncnorm

    assert v.mean() == pytest.approx(truncnorm(-0.5, 2.0).mean(), abs=0.02)
    w = TruncatedLogNormal(1.0, 0.5, 0.5, 3.0).sample(rng, 20000)
    assert w.min() >= 0.5 and w.max() <= 3.0
    a, b = np.log(0.5) / 0.5, np.log(3.0) / 0.5
    assert np.median(np.log(w)) == pytest.approx(0.5 * truncnorm(a, b).median(), abs=0.02)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"colour_weights": (1.0, -1.0, 2.0)}, "colour_weights"),
        ({"colour_weights": (1.0, float("nan"), 2.0)}, "colour_weights"),
        ({"g_minus_r": ((1.3, 2.0), (1.3, 0.8), (0.0, 0.8))}, "g_minus_r"),
        ({"mag_g_range": (30.0, 20.0)}, "mag_g_range"),
        ({"q": Uniform(0.1, 1.5)}, "'q'"),
        ({"sersic_n": TruncatedNormal(1.0, 1.0, 0.1, 4.0)}, "sersic_n"),
        ({"r_e": (0.0, 1.0)}, "'r_e'"),
    ],
)
def test_bad_population_config_names_the_field(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SourcePopulationConfig(**kwargs)


def test_distribution_parameters_are_validated():
    with pytest.raises(ParameterError, match="sigma"):
        TruncatedNormal(0.0, -1.0, 0.0, 1.0)
    with pytest.raises(ParameterError, match="low"):
        Uniform(2.0, 1.0)
    with pytest.raises(ParameterError, match="low"):
        TruncatedLogNormal(1.0, 0.5, 0.0, 2.0)


def _catalog(n=400, seed=0):
    rng = np.random.default_rng(seed)
    r = rng.uniform(22, 26, n)
    return Table(
        {
            "G": r + rng.uniform(0.0, 2.0, n),
            "R": r,
            "Z": r - rng.uniform(0.0, 1.0, n),
            "reff": rng.uniform(0.1, 1.0, n),
            "axis_ratio": rng.uniform(0.3, 1.0, n),
            "zs": rng.uniform(0.5, 3.0, n),
            "n": np.ones(n),
        }
    )


COLUMNS = {"mag_g": "G", "mag_r": "R", "mag_z": "Z", "r_e": "reff", "q": "axis_ratio"}


def test_catalog_population_maps_columns_and_reweights_colours():
    cat = _catalog()
    pop = CatalogSourcePopulation(
        cat,
        columns={**COLUMNS, "redshift": "zs"},
        colour_weights=(1, 1, 2),
        override_n=True,
    )
    t = pop.draw_table(4000, 2)
    row = cat[int(t["catalog_row"][0])]
    assert t["mag_r"][0] == row["R"] and t["redshift"][0] == row["zs"]
    frac = [(t["colour_class"] == c).mean() for c in ("red", "green", "blue")]
    np.testing.assert_allclose(frac, [0.25, 0.25, 0.5], atol=0.03)
    assert t["n"].min() >= 0.4 and np.std(t["n"]) > 0.1  # n = 1 replaced as in the paper
    assert pop.draw_table(200, 3, min_redshift=2.0)["redshift"].min() > 2.0
    src = pop.draw(4, center=(0.5, 0.5))
    assert isinstance(src.profile, Sersic)
    kept = CatalogSourcePopulation(cat, columns={**COLUMNS, "redshift": "zs"})
    assert (kept.draw_table(20, 1)["n"] == 1.0).all()


def test_catalog_population_reports_missing_columns_and_bad_values():
    cat = _catalog(10)
    with pytest.raises(ParameterError, match="'redshift'"):
        CatalogSourcePopulation(cat, columns=COLUMNS)
    cat["zs"][3] = np.nan
    with pytest.raises(ParameterError, match="'zs'.*row 3"):
        CatalogSourcePopulation(cat, columns={**COLUMNS, "redshift": "zs"})
    with pytest.raises(ParameterError, match="unknown keys"):
        CatalogSourcePopulation(cat, columns={"magnitude": "R"})
    with pytest.raises(ParameterError, match="astropy Table"):
        CatalogSourcePopulation({"a": [1]})


def test_ellipse_geometry_matches_lenstronomy():
    # lenstronomy's SERSIC_ELLIPSE (product-average radius, phi CCW from +x) uses the same
    # elliptical radius; its b_n is an approximation, so compare the radii the two profiles
    # imply rather than the values.
    from lenstronomy.LightModel.Profiles.sersic import SersicElliptic_qPhi

    s = Sersic(x=0.2, y=-0.3, r_e=0.8, n=2.0, q=0.45, phi=37.0)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-2, 2, 200), rng.uniform(-2, 2, 200)
    ours = s.surface_brightness(x, y)[0]
    r_ours = s.r_e * ((s._log_i0 - np.log(ours)) / s.b_n) ** s.n
    lens = SersicElliptic_qPhi().function(
        x, y, 1.0, s.r_e, s.n, s.q, math.radians(s.phi), s.x, s.y, max_R_frac=1e6
    )
    b_l = 1.9992 * s.n - 0.3271
    r_lens = s.r_e * (1.0 - np.log(lens) / b_l) ** s.n
    np.testing.assert_allclose(r_ours, r_lens, rtol=1e-9)


# --- the paper preset is the old population ---------------------------------------------------
def test_paper_preset_draws_the_same_table_as_before_the_realistic_population():
    # the first two rows drawn with seed 42 (min_redshift 0.5) by the Table 1 population as it
    # was before the realistic default existed
    t = SourcePopulation(PAPER).draw_table(300, 42, min_redshift=0.5)
    old = {
        "mag_g": (25.800589443700584, 24.361702258308583),
        "mag_r": (25.418584744798398, 23.180985976716578),
        "mag_z": (25.24385143180098, 22.699378088818403),
        "r_e": (0.48557867859520304, 0.10957266428006462),
        "n": (1.0875175100859147, 1.9893453931985814),
        "q": (0.7765837431124442, 0.767267527681966),
        "phi": (78.64331186357165, 19.175778073430052),
        "redshift": (1.3347613831137408, 1.2441510298671976),
    }
    for col, values in old.items():
        assert tuple(t[col][:2]) == values, col
    assert (t["n_clumps"] == 0).all() and np.isnan(t["uv_slope"]).all()
    assert isinstance(SourcePopulation(PAPER).make_source(t[0]), Sersic)


# --- the realistic population -----------------------------------------------------------------
def test_smail_redshift_distribution_matches_numerical_cdf():
    d = SmailRedshift(1.24, 0.51, 1.01, 0.05, 4.0)
    zz = np.linspace(0.0, 4.0, 4001)
    pdf = zz**1.24 * np.exp(-((zz / 0.51) ** 1.01))
    pdf[(zz < 0.05)] = 0.0
    cdf = integrate.cumulative_trapezoid(pdf, zz, initial=0.0)
    cdf /= cdf[-1]
    v = d.sample(np.random.default_rng(1), 40000)
    assert v.min() >= 0.05 and v.max() <= 4.0
    for zq in (0.3, 0.8, 1.5, 2.5, 3.5):  # binomial sigma <= 0.0025
        assert np.mean(v <= zq) == pytest.approx(np.interp(zq, zz, cdf), abs=0.01)
    assert d.median() == pytest.approx(np.interp(0.5, cdf, zz), abs=2e-3)
    # truncated by min_redshift, as the simulator asks
    t = SourcePopulation().draw_table(2000, 3, min_redshift=2.5)
    assert t["redshift"].min() >= 2.5 and t["redshift"].max() <= 4.0
    with pytest.raises(ParameterError, match="z0"):
        SmailRedshift(1.0, -0.5, 1.0, 0.0, 4.0)


def test_igm_transmission_is_madau_line_blanketing():
    z = 3.0
    # redward of Ly alpha: transparent; between Ly beta and Ly alpha: Ly alpha forest only
    assert igm_transmission(1300.0 * (1 + z), z) == 1.0
    lam = 1100.0 * (1 + z)
    assert igm_transmission(lam, z) == pytest.approx(math.exp(-3.6e-3 * (lam / 1215.67) ** 3.46))
    assert igm_transmission(1000.0 * (1 + z), z) < igm_transmission(lam, z)


def test_colours_follow_redshift_and_g_drops_out_above_z3():
    z = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.3, 3.6, 4.0])
    gr, rz = sed_colours(z, -1.5, -1.0, 1.25)
    # flat UV continuum in g and r at z = 1.5-2.5: g - r = 0.31 (beta + 2) ~ 0.15
    assert np.all(np.abs(gr[1:4] - 0.31 * 0.5) < 0.05)
    assert np.all(np.diff(gr[3:]) > 0.1)  # the Lyman-alpha forest enters g
    assert gr[-1] > 1.0  # a g-band dropout at z = 4
    # the 4000 A break between r and z at z ~ 0.8-1 makes r - z redder than at z = 2
    assert rz[0] > rz[2] + 0.2
    # bluer UV slopes give bluer colours
    assert sed_colours(2.0, -2.5, -1.0, 1.25)[0][0] < sed_colours(2.0, -1.0, -1.0, 1.25)[0][0]
    t = SourcePopulation().draw_table(6000, 4)
    hi, mid = t["redshift"] > 3.5, (t["redshift"] > 1.5) & (t["redshift"] < 2.5)
    assert (
        np.median(t["mag_g"][hi] - t["mag_r"][hi])
        > np.median(t["mag_g"][mid] - t["mag_r"][mid]) + 0.5
    )


def test_top_hat_passbands_match_the_decam_curves_of_speclite():
    speclite = pytest.importorskip("speclite.filters")
    import astropy.units as u

    curves = speclite.load_filters("decam2014-g", "decam2014-r", "decam2014-z")
    lam = np.linspace(3000.0, 11000.0, 8001)
    from clusterlens.sources.sed import sed_fnu

    for z in (0.3, 0.8, 1.5, 2.5, 3.3, 3.8):
        for beta, d in ((-2.2, 1.1), (-1.0, 1.4)):
            fnu = sed_fnu(lam / (1 + z), beta, -1.0, d) * igm_transmission(lam, z)
            flam = fnu / lam**2 * 1e-17 * u.erg / u.s / u.cm**2 / u.AA
            m = curves.get_ab_magnitudes(flam, lam * u.AA)
            gr, rz = sed_colours(z, beta, -1.0, d)
            assert gr[0] == pytest.approx(m["decam2014-g"][0] - m["decam2014-r"][0], abs=0.1)
            assert rz[0] == pytest.approx(m["decam2014-r"][0] - m["decam2014-z"][0], abs=0.1)
    for name, curve in zip("grz", curves, strict=True):
        lo, hi = PASSBANDS[name]
        assert lo < curve.effective_wavelength.value < hi


def test_sizes_shrink_with_redshift_as_configured():
    cfg = SourcePopulationConfig(size_scatter_ln=0.0)
    pop = SourcePopulation(cfg)
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3)
    z = np.array([0.5, 1.0, 2.0, 3.0])
    mag = np.full(4, 24.0)
    r_e = pop.sizes(0, mag, z)
    abs_mag = mag - cosmo.distmod(z).value + 2.5 * np.log10(1 + z)
    kpc = 7.0 * (1 + z) ** -1.2 * (10 ** (-0.4 * (abs_mag + 21.0))) ** 0.27
    expected = kpc / (cosmo.angular_diameter_distance(z).to_value("kpc") * math.pi / 648000)
    np.testing.assert_allclose(r_e, np.clip(expected, 0.02, 1.68), rtol=2e-3)
    # with the scatter: the drawn population's median size falls with redshift
    t = SourcePopulation().draw_table(6000, 5)
    low, high = t["redshift"] < 0.7, t["redshift"] > 2.0
    assert np.median(t["r_e"][high]) < 0.8 * np.median(t["r_e"][low])
    assert t["r_e"].min() >= 0.02 and t["r_e"].max() <= 1.68


def test_clumpy_sources_conserve_flux_and_are_reproducible():
    pop = SourcePopulation(SourcePopulationConfig(clump_probability=(1.0, 1.0)))
    t = pop.draw_table(200, 6)
    cfg = pop.config
    assert (t["n_clumps"] >= 1).all() and (t["n_clumps"] <= 6).all()
    assert (t["clump_fraction"] >= 0.1).all() and (t["clump_fraction"] <= 0.4).all()
    # clumps are bluer than the body (younger stars, no 4000 A break)
    assert (t["g_minus_r_clumps"] <= t["g_minus_r_body"] + 1e-9).all()
    for row in t[:20]:
        src = pop.make_source(row, x=0.4, y=-0.3)
        assert isinstance(src, StructuredSource) and len(src.clumps) == row["n_clumps"]
        np.testing.assert_allclose(src.magnitudes, [row["mag_g"], row["mag_r"], row["mag_z"]])
        assert src.clump_fraction[1] == pytest.approx(row["clump_fraction"])
        assert (src.x, src.y) == (0.4, -0.3)
        for c in src.clumps:
            assert cfg.clump_r_e[0] - 1e-12 <= c.r_e or c.r_e == pytest.approx(src.r_e)
            assert c.r_e <= cfg.clump_r_e[1] + 1e-12
        again = pop.make_source(row, x=0.4, y=-0.3)
        assert again == src
    # the rendered, unlensed source holds the sum of its components' fluxes
    src = pop.make_source(t[0], x=0.05, y=0.02)
    img = render_sersic_adaptive(src, None, shape=(81, 81), pixel_scale=PIX)
    np.testing.assert_allclose(img.sum(axis=(1, 2)), src.fluxes, rtol=2e-3)
    parts = sum(
        render_sersic_adaptive(c, None, shape=(81, 81), pixel_scale=PIX) for c in src.components
    )
    # each component is refined to its share of the tolerance: the same image to 0.5% of its peak
    np.testing.assert_allclose(img, parts, rtol=0, atol=5e-3 * img.max())
    sb = src.surface_brightness([0.0, 0.1], [0.0, 0.0])
    np.testing.assert_allclose(
        sb, sum(c.surface_brightness([0.0, 0.1], [0.0, 0.0]) for c in src.components)
    )


def test_lensed_structured_source_matches_brute_force():
    body = Sersic(x=0.1, y=0.05, r_e=0.4, n=1.0, q=0.7, phi=20.0, fluxes=(1.0, 1.5, 2.0))
    clumps = (
        Sersic(x=0.3, y=0.0, r_e=0.08, n=0.5, q=0.8, phi=0.0, fluxes=(0.3, 0.2, 0.1)),
        Sersic(x=-0.1, y=0.25, r_e=0.05, n=0.5, q=0.9, phi=40.0, fluxes=(0.2, 0.1, 0.05)),
    )
    src = StructuredSource(body, clumps)

    def trace(x, y):
        r = np.maximum(np.hypot(x, y), 1e-12)
        return x - 3.0 * x / r, y - 3.0 * y / r

    img = render_sersic_adaptive(src, trace, shape=(41, 41), pixel_scale=PIX, rtol=1e-5)
    x, y = pixel_grid((41, 41), PIX, supersample=24)
    bx, by = trace(x, y)
    brute = render_sersic(src, bx, by, pixel_scale=PIX, supersample=24)
    np.testing.assert_allclose(img.sum(axis=(1, 2)), brute.sum(axis=(1, 2)), rtol=3e-3)
    with pytest.raises(ParameterError, match="clumps"):
        StructuredSource(body, (body, "clump"))
    with pytest.raises(ParameterError, match="body"):
        StructuredSource("body")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"colour_model": "templates"}, "colour_model"),
        ({"size_model": "fixed"}, "size_model"),
        ({"clump_count": (0, 3)}, "clump_count"),
        ({"clump_probability": (0.2, 1.5)}, "clump_probability"),
        ({"clump_flux_fraction": (0.5, 0.2)}, "clump_flux_fraction"),
        ({"second_source_probability": 2.0}, "second_source_probability"),
        ({"uv_slope": TruncatedNormal(-1.5, 0.5, -9.0, 0.0)}, "uv_slope"),
        ({"redshift": "smail"}, "redshift"),
    ],
)
def test_bad_realistic_population_config_names_the_field(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SourcePopulationConfig(**kwargs)


def test_sources_take_the_zero_point_from_below_not_from_observe():
    # issue 13: no import arrow from sources back up to observe; the public names stay
    import subprocess
    import sys

    code = (
        "import sys, clusterlens.sources; "
        "print(any(m.startswith('clusterlens.observe') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from clusterlens import _photometry, observe
    from clusterlens.observe import photometry

    assert observe.ZERO_POINT == photometry.ZERO_POINT == _photometry.ZERO_POINT == 22.5
    assert photometry.mag_to_nanomaggies is _photometry.mag_to_nanomaggies
    assert photometry.nanomaggies_to_mag is _photometry.nanomaggies_to_mag
