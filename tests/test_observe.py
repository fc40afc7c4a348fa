import math
import warnings

import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.observe import (
    FWHM_TO_SIGMA,
    SURVEYS,
    ConditionsDistribution,
    GaussianPSF,
    MoffatPSF,
    PixelPSF,
    SurveyConditions,
    add_arc_noise,
    arc_snr,
    convolve,
    inject,
    legacy_surveys_psfs,
    mag_to_nanomaggies,
    measure_conditions,
    measure_psf,
    measure_sky_sigma,
    nanomaggies_to_mag,
    observe_arc,
)
from clusterlens.sources import Sersic, render_sersic_adaptive

PIX = 0.262


def test_magnitudes_and_nanomaggies():
    assert mag_to_nanomaggies(22.5) == 1.0
    assert mag_to_nanomaggies(20.0) == pytest.approx(10.0)
    m = np.array([18.0, 24.3, 27.1])
    np.testing.assert_allclose(nanomaggies_to_mag(mag_to_nanomaggies(m)), m)
    with pytest.raises(ParameterError, match="'flux'"):
        nanomaggies_to_mag(-1.0)


def _moment_fwhm(kernel, pix):
    n = kernel.shape[0]
    c = np.arange(n) - n // 2
    var = (kernel.sum(axis=0) * c**2).sum() * pix**2
    # a pixel-integrated Gaussian has variance sigma^2 + pix^2 / 12
    return math.sqrt(var - pix**2 / 12) / FWHM_TO_SIGMA


@pytest.mark.parametrize("fwhm", [0.8, 1.1, 1.3, 1.7])
def test_gaussian_psf_has_the_requested_fwhm(fwhm):
    from photutils.psf import fit_fwhm

    k = GaussianPSF(fwhm).image(PIX)
    assert k.shape[0] % 2 == 1 and k.shape[0] == k.shape[1]
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.unravel_index(np.argmax(k), k.shape) == (k.shape[0] // 2,) * 2
    assert _moment_fwhm(k, PIX) == pytest.approx(fwhm, rel=2e-3)
    # photutils fits a pixel-integrated circular Gaussian
    fitted = float(fit_fwhm(k, fit_shape=k.shape[0])[0]) * PIX
    assert fitted == pytest.approx(fwhm, rel=1e-2)


def test_convolving_a_point_source_gives_the_psf_and_keeps_flux():
    img = np.zeros((3, 41, 41))
    img[:, 20, 20] = [1.0, 2.0, 3.0]
    psfs = legacy_surveys_psfs()
    out = convolve(img, psfs)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), [1, 2, 3], rtol=1e-10)
    for band, psf in enumerate(psfs):
        k = psf.image(PIX)
        h = k.shape[0] // 2
        np.testing.assert_allclose(
            out[band, 20 - h : 21 + h, 20 - h : 21 + h], k * (band + 1), atol=1e-12
        )


def test_pixel_psf_is_normalised_validated_and_matches_gaussian():
    k = GaussianPSF(1.2).image(PIX)
    p = PixelPSF(5 * k, pixel_scale=PIX)
    np.testing.assert_allclose(p.image(PIX), k)
    img = np.random.default_rng(1).random((3, 30, 30))
    np.testing.assert_allclose(convolve(img, p), convolve(img, GaussianPSF(1.2)), atol=1e-12)
    with pytest.raises(ParameterError, match="odd"):
        PixelPSF(np.ones((4, 5)))
    with pytest.raises(ParameterError, match="'kernel'"):
        PixelPSF(np.full((5, 5), np.nan))
    with pytest.raises(ParameterError, match="positive sum"):
        PixelPSF(-np.ones((5, 5)))
    off = np.zeros((7, 7))
    off[0, 0] = 1
    with pytest.raises(ParameterError, match="peak"):
        PixelPSF(off)
    with pytest.raises(ParameterError, match="pixel_scale"):
        p.image(0.5)
    with pytest.raises(ParameterError, match="one PSF per band"):
        convolve(img, [p, p])


def test_depth_calibration_gives_five_sigma_for_the_reference_galaxy():
    cond = SurveyConditions()
    galaxy = Sersic(r_e=cond.reference_r_e, n=1.0)
    img = render_sersic_adaptive(galaxy, None, shape=(61, 61), pixel_scale=PIX)
    for band, depth in enumerate(cond.depth):
        arc = np.zeros((3, 61, 61))
        arc[band] = img[band] * mag_to_nanomaggies(depth)
        arc = convolve(arc, cond.psfs)
        # sky-limited matched-filter S/N is exactly 5 at the depth ...
        sky_only = np.sqrt((arc[band] ** 2).sum()) / cond.sky_sigma[band]
        assert sky_only == pytest.approx(5.0, rel=2e-3)
        # ... and the galaxy's own shot noise lowers it by a little
        assert 4.8 < arc_snr(arc, cond)[band] < sky_only
    # numbers: sky sigma per pixel [nanomaggies] near what the DR9 coadds show
    assert 0.003 < cond.sky_sigma[0] < cond.sky_sigma[1] < cond.sky_sigma[2] < 0.04


def test_noise_of_a_flat_arc_has_the_poisson_variance():
    cond = SurveyConditions()
    flat = np.broadcast_to(np.array([0.5, 1.0, 2.0])[:, None, None], (3, 300, 300))
    noisy = add_arc_noise(flat, cond, np.random.default_rng(5))
    var = noisy.reshape(3, -1).var(axis=1)
    expected = np.array([0.5, 1.0, 2.0]) / cond.gain
    # the sample variance of 90000 values scatters by sqrt(2 / N) ~ 0.5%
    np.testing.assert_allclose(var, expected, rtol=0.03)
    np.testing.assert_allclose(noisy.reshape(3, -1).mean(axis=1), [0.5, 1.0, 2.0], rtol=1e-3)
    again = add_arc_noise(flat, cond, np.random.default_rng(5))
    np.testing.assert_array_equal(noisy, again)


def test_arc_noise_draws_what_numpy_poisson_draws():
    # the one-pass kernel takes the same deviates from the stream as rng.poisson: arcs
    # from nothing to many counts, exact zeros and FFT ringing (tiny values of either sign)
    cond = SurveyConditions()
    gen = np.random.default_rng(1)
    arc = gen.standard_normal((3, 61, 61)) ** 4 * 0.02
    arc[:, ::7] = 1e-22
    arc[:, :, ::11] = 0.0
    arc[:, ::13] = -1e-18
    arc[:, ::5, ::5] = 0.3  # lam >= 10 in every band (PTRS)
    arc[1, 3, 3] = 4e-3
    gain = cond.gain[:, None, None]
    assert (cond.gain * 0.3 >= 10).all()
    for seed in range(4):
        ref_rng, rng = np.random.default_rng(seed), np.random.default_rng(seed)
        want = ref_rng.poisson(np.clip(arc, 0.0, None) * gain) / gain
        np.testing.assert_array_equal(add_arc_noise(arc, cond, rng), want)
        assert rng.random() == ref_rng.random()  # the stream goes on where numpy's does


def test_arc_snr_and_visible_pixels_are_the_numpy_sums():
    from clusterlens.mock.simulator import visible_pixels

    cond = SurveyConditions()
    arc = np.random.default_rng(2).standard_normal((3, 41, 41)) ** 2 * 0.01 - 0.002
    img = np.clip(arc, 0.0, None)
    var = cond.sky_sigma[:, None, None] ** 2 + img / cond.gain[:, None, None]
    np.testing.assert_allclose(arc_snr(arc, cond), np.sqrt((img**2 / var).sum(axis=(1, 2))))
    for k in (0.5, 1.0, 3.0):
        above = (img * img > k * k * var).reshape(3, -1).sum(axis=1)
        assert visible_pixels(arc, cond, k) == above.max() > 0


def test_arc_snr_combines_bands_in_quadrature():
    cond = SurveyConditions()
    arc = np.zeros((3, 21, 21))
    arc[:, 10, 10] = 0.1
    snr = arc_snr(arc, cond)
    assert arc_snr(arc, cond, combine=True) == pytest.approx(np.sqrt((snr**2).sum()))
    assert snr[0] > snr[2]  # g is deeper per pixel than z


def test_observe_arc_convolves_keeps_flux_and_returns_float32():
    cond = SurveyConditions()
    arc = np.zeros((3, 51, 51))
    arc[:, 25, 25] = [2.0, 3.0, 4.0]
    obs = observe_arc(arc, cond, 11)
    assert obs.image.dtype == np.float32 and obs.image.shape == (3, 51, 51)
    np.testing.assert_allclose(obs.noiseless.sum(axis=(1, 2)), [2, 3, 4], rtol=1e-9)
    # the noisy total is Poisson: standard deviation sqrt(f / gain), 0.7-1.1% here; 4 sigma
    flux = np.array([2.0, 3.0, 4.0])
    assert np.all(np.abs(obs.image.sum(axis=(1, 2)) - flux) < 4.0 * np.sqrt(flux / cond.gain))
    quiet = observe_arc(arc, cond, 11, noise=False)
    np.testing.assert_allclose(quiet.image, obs.noiseless.astype(np.float32))


def test_inject_adds_the_arc_and_keeps_dtype_shape_and_band_order():
    rng = np.random.default_rng(0)
    cutout = rng.normal(0, 0.01, (3, 40, 40)).astype(np.float32)
    before = cutout.copy()
    arc = np.zeros((3, 40, 40))
    arc[0, 5, 5] = 1.0  # only g
    out = inject(cutout, arc)
    assert out.dtype == np.float32 and out.shape == (3, 40, 40)
    np.testing.assert_array_equal(cutout, before)  # input untouched
    diff = out - cutout
    assert diff[0, 5, 5] == pytest.approx(1.0) and np.count_nonzero(diff) == 1


@pytest.mark.parametrize(
    "cutout, arc, name",
    [
        (np.zeros((4, 10, 10)), np.zeros((4, 10, 10)), "'cutout'.*3 bands"),
        (np.zeros((10, 10)), np.zeros((10, 10)), "'cutout'"),
        (np.zeros((3, 10, 10)), np.zeros((3, 10, 11)), "'arc'.*shape"),
        (np.zeros((3, 10, 10)), np.full((3, 10, 10), np.nan), "'arc'"),
        (np.array([["a"]]), np.zeros((3, 10, 10)), "'cutout'"),
    ],
)
def test_inject_rejects_wrong_shapes_and_bands(cutout, arc, name):
    with pytest.raises(ParameterError, match=name):
        inject(cutout, arc)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"depth": (24.0, 23.4)}, "'depth'"),
        ({"depth": (24.0, np.nan, 22.5)}, "'depth'"),
        ({"psf_fwhm": (1.3, -1.0, 1.1)}, "'psf_fwhm'"),
        ({"pixel_scale": 0.0}, "'pixel_scale'"),
    ],
)
def test_survey_conditions_reject_bad_values(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SurveyConditions(**kwargs)


def test_gaussian_psf_validation():
    with pytest.raises(ParameterError, match="'fwhm'"):
        GaussianPSF(-1.0)
    with pytest.raises(ParameterError, match="'size'"):
        GaussianPSF(1.0, size=10)
    assert GaussianPSF(1.0, size=11).image(PIX).shape == (11, 11)


# --- Moffat PSFs ---------------------------------------------------------------------------
@pytest.mark.parametrize("fwhm, beta", [(1.3, 2.5), (1.1, 3.0), (1.8, 4.5)])
def test_moffat_is_normalised_with_the_requested_fwhm(fwhm, beta):
    from astropy.modeling.models import Moffat2D
    from scipy.integrate import quad

    psf = MoffatPSF(fwhm, beta)
    # astropy's Moffat2D (gamma = alpha, alpha = beta) as the oracle of the FWHM relation
    assert Moffat2D(gamma=psf.alpha, alpha=beta).fwhm == pytest.approx(fwhm, rel=1e-12)
    total = quad(lambda r: 2 * math.pi * r * psf.profile_value(r), 0, np.inf)[0]
    assert total == pytest.approx(1.0, rel=1e-9)
    assert psf.profile_value(fwhm / 2) == pytest.approx(0.5 * psf.profile_value(0.0), rel=1e-12)
    r90 = psf.radius_enclosing(0.9)
    inside = quad(lambda r: 2 * math.pi * r * psf.profile_value(r), 0, r90)[0]
    assert inside == pytest.approx(0.9, rel=1e-9)
    k = psf.image(PIX)
    assert k.shape[0] % 2 == 1 and k.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.unravel_index(np.argmax(k), k.shape) == (k.shape[0] // 2,) * 2
    # the default kernel holds all but FLUX_TOLERANCE of the flux within its inscribed circle
    assert (k.shape[0] // 2 + 1) * PIX >= psf.radius_enclosing(1 - MoffatPSF.FLUX_TOLERANCE)
    # a fit of a pixel-integrated profile to the kernel gives the FWHM back
    assert PixelPSF(k, pixel_scale=PIX).fwhm == pytest.approx(fwhm, rel=5e-3)


def test_moffat_and_mixed_convolution_match_a_direct_2d_convolution():
    from scipy.signal import convolve2d

    rng = np.random.default_rng(2)
    img = rng.random((3, 64, 64))
    psfs = [MoffatPSF(1.4, 2.5), GaussianPSF(1.2), PixelPSF(MoffatPSF(1.0, 4.0).image(PIX))]
    out = convolve(img, psfs)
    for band, psf in enumerate(psfs):
        direct = convolve2d(img[band], psf.image(PIX), mode="same")
        np.testing.assert_allclose(out[band], direct, atol=1e-12)
    # twice (the kernel transforms come from the cache the second time)
    np.testing.assert_array_equal(convolve(img, psfs), out)
    point = np.zeros((3, 101, 101))
    point[:, 50, 50] = 1.0
    np.testing.assert_allclose(convolve(point, MoffatPSF(1.3, 3.0)).sum(axis=(1, 2)), 1.0)


def test_trimmed_convolution_is_the_crop_of_the_whole_one():
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(3)
    psfs = [MoffatPSF(1.6, 2.5), GaussianPSF(1.2), PixelPSF(MoffatPSF(1.0, 4.0).image(PIX))]
    # the mock's box and margin, a trim wider than the kernel, kernels larger than the image
    for n, trim in ((277, 27), (64, 5), (64, 40 // 2), (31, 12), (16, 3), (21, 0)):
        img = rng.random((3, n, n))
        whole = convolve(img, psfs)
        out = convolve(img, psfs, trim=trim)
        kept = (slice(trim, n - trim),) * 2
        assert out.shape == (3, n - 2 * trim, n - 2 * trim)
        # the Gaussian passes sum the kept pixels in the same order: the same numbers
        np.testing.assert_array_equal(out[1], whole[1][kept])
        for band, psf in enumerate(psfs):
            linear = fftconvolve(img[band], psf.image(PIX), mode="same")[kept]
            np.testing.assert_allclose(out[band], linear, rtol=0, atol=1e-13 * linear.max())
    for bad in (-1, 1.5, True, 8):
        with pytest.raises(ParameterError, match="'trim'"):
            convolve(np.ones((3, 16, 16)), GaussianPSF(1.0), trim=bad)


def test_single_precision_convolution_stays_within_atol_on_synthetic_fields():
    # the fields' float32 FFTs: measured against the float64 convolution on painted fields
    # (stars, BCGs, confusers), the error stays below atol = 1e-3 sky sigma; a band with too
    # many bright pixels keeps the float64 FFT (the same numbers)
    import clusterlens.fields as fields_module
    from clusterlens.mock import MockConfig, SyntheticSky

    painted = []
    real_convolve = fields_module.convolve

    def capture(image, psfs, **kw):
        painted.append((image.copy(), psfs, kw))
        return real_convolve(image, psfs, **kw)

    cfg = MockConfig()
    sky = SyntheticSky(cfg)
    rng = np.random.default_rng(3)
    fields_module.convolve = capture
    try:
        scenes = [sky.draw(rng, ("lens", "non-lens")[i % 2]) for i in range(12)]
    finally:
        fields_module.convolve = real_convolve
    assert len(painted) == len(scenes)
    worst = 0.0
    for (image, psfs, kw), scene in zip(painted, scenes, strict=True):
        atol = 1e-3 * scene.conditions.sky_sigma.min()
        exact = convolve(image, psfs, trim=kw["trim"])
        fast = convolve(image, psfs, trim=kw["trim"], atol=atol)
        worst = max(worst, float(np.abs(fast - exact).max()) / atol)
    assert 0.0 < worst < 1.0
    crowded = np.random.default_rng(1).random((3, 64, 64)) * 100.0
    psf = MoffatPSF(1.2, 3.0)
    np.testing.assert_array_equal(convolve(crowded, psf, atol=1e-6), convolve(crowded, psf))
    with pytest.raises(ParameterError, match="'atol'"):
        convolve(crowded, psf, atol=0.0)


def test_moffat_kernel_spectrum_is_the_fft_of_the_wrapped_kernel():
    # the cosine sum used for circular kernels equals rfft2 of the kernel on the grid
    from scipy import fft as sp_fft

    from clusterlens.observe._kernels import symmetric_kernel_spectrum
    from clusterlens.observe.psf import _wrapped_kernel

    for fwhm, beta, ly, lx in ((1.5, 3.0, 280, 280), (2.2, 2.5, 320, 300), (0.9, 4.5, 81, 64)):
        k = MoffatPSF(fwhm, beta).image(PIX)
        want = sp_fft.rfft2(_wrapped_kernel(k, ly, lx))
        got = symmetric_kernel_spectrum(k, ly, lx)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-15)


def test_moffat_validation():
    with pytest.raises(ParameterError, match="'beta'"):
        MoffatPSF(1.3, 1.0)
    with pytest.raises(ParameterError, match="'fwhm'"):
        MoffatPSF(0.0)
    with pytest.raises(ParameterError, match="'size'"):
        MoffatPSF(1.3, size=8)
    assert MoffatPSF(1.3, size=15).image(PIX).shape == (15, 15)


# --- SurveyConditions with any PSF ----------------------------------------------------------
def test_n_eff_in_fourier_space_matches_a_direct_render():
    for cond in (SurveyConditions(), SurveyConditions(psf_model="moffat", psf_beta=2.5)):
        galaxy = Sersic(r_e=cond.reference_r_e, n=1.0)
        img = render_sersic_adaptive(galaxy, None, shape=(141, 141), pixel_scale=PIX, rtol=1e-6)
        prof = convolve(img, cond.psfs)
        prof /= prof.sum(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(cond.n_eff, 1.0 / (prof**2).sum(axis=(1, 2)), rtol=3e-3)


def test_conditions_carry_per_band_psf_objects():
    moffat = SurveyConditions(psf_fwhm=(1.5, 1.3, 1.1), psf_model="moffat", psf_beta=2.8)
    assert all(isinstance(p, MoffatPSF) and p.beta == 2.8 for p in moffat.psfs)
    assert moffat.beta == 2.8 and math.isnan(SurveyConditions().beta)
    mixed = (GaussianPSF(1.4), MoffatPSF(1.2, 3.0), PixelPSF(GaussianPSF(1.0).image(PIX)))
    cond = SurveyConditions(psf=mixed)
    assert cond.psfs == mixed
    np.testing.assert_allclose(cond.psf_fwhm, (1.4, 1.2, 1.0), rtol=5e-3)
    with pytest.raises(ParameterError, match="'psf_fwhm'.*match"):
        SurveyConditions(psf=mixed, psf_fwhm=(1.4, 1.2, 1.5))
    with pytest.raises(ParameterError, match="'psf'"):
        SurveyConditions(psf=(GaussianPSF(1.0),) * 2)
    with pytest.raises(ParameterError, match="'psf_model'"):
        SurveyConditions(psf_model="airy")
    # a wider PSF at the same depth spreads the reference galaxy: less noise per pixel
    wide = SurveyConditions(psf_fwhm=(2.0, 2.0, 2.0))
    assert np.all(wide.sky_sigma < SurveyConditions(psf_fwhm=(1.0, 1.0, 1.0)).sky_sigma)


def test_conditions_from_a_measured_sky_sigma_round_trip():
    sigma = (0.004, 0.007, 0.02)
    cond = SurveyConditions.from_sky_sigma(sigma, psf_model="moffat", psf_beta=3.0)
    np.testing.assert_allclose(cond.sky_sigma, sigma, rtol=1e-12)
    fresh = SurveyConditions(depth=cond.depth, psf_model="moffat", psf_beta=3.0)
    np.testing.assert_allclose(fresh.sky_sigma, sigma, rtol=1e-12)
    with pytest.raises(ParameterError, match="depth"):
        SurveyConditions.from_sky_sigma(sigma, depth=(24, 23, 22))


# --- conditions measured on a cutout --------------------------------------------------------
def _cutout(psfs, sigma, seed, *, n=161, stars=8, galaxy=True):
    """Stars of known PSF (integer pixels), an extended galaxy, white noise ``sigma``."""
    rng = np.random.default_rng(seed)
    points = np.zeros((3, n, n))
    for _ in range(stars):
        y, x = rng.integers(15, n - 15, 2)
        points[:, y, x] += rng.uniform(30.0, 300.0) * np.array(sigma) / 0.01
    if galaxy:
        gal = Sersic.from_magnitudes([19.5, 19.0, 18.5], x=4.0, y=-3.0, r_e=1.2, n=1.0, q=0.6)
        points += render_sersic_adaptive(gal, None, shape=(n, n), pixel_scale=PIX)
    img = convolve(points, psfs)
    return img + rng.standard_normal(img.shape) * np.asarray(sigma)[:, None, None]


@pytest.mark.parametrize(
    "psfs",
    [
        [MoffatPSF(1.6, 2.6), MoffatPSF(1.35, 3.2), MoffatPSF(1.05, 4.2)],
        [GaussianPSF(1.5), GaussianPSF(1.3), GaussianPSF(1.1)],
    ],
)
def test_psf_and_noise_measured_from_a_synthetic_cutout(psfs):
    sigma = (0.005, 0.008, 0.02)
    img = _cutout(psfs, sigma, 4)
    np.testing.assert_allclose(measure_sky_sigma(img), sigma, rtol=0.03)
    meas = measure_psf(img)
    assert np.all(meas.n_stars >= 3)
    np.testing.assert_allclose(meas.fwhm, [p.fwhm for p in psfs], rtol=0.03)
    if isinstance(psfs[0], MoffatPSF):
        np.testing.assert_allclose(meas.beta, [p.beta for p in psfs], rtol=0.25)


def test_measure_conditions_prefers_psfsize_columns_then_stars_then_the_median():
    from astropy.table import Table

    psfs = [MoffatPSF(f, 3.0) for f in (1.6, 1.4, 1.2)]
    sigma = (0.005, 0.008, 0.02)
    img = _cutout(psfs, sigma, 7)
    row = Table({"PSFSIZE_G": [1.9], "psfsize_r": [0.0], "psfsize_z": [np.nan]})[0]
    cond, record = measure_conditions(img, row=row)
    assert record["psf_source"] == ("catalog", "stars", "stars")
    assert cond.psf_fwhm[0] == 1.9
    np.testing.assert_allclose(cond.psf_fwhm[1:], (1.4, 1.2), rtol=0.03)
    assert cond.psf_model == "moffat" and cond.psf_beta == pytest.approx(3.0, rel=0.2)
    # the depth is the one the cutout's noise implies
    np.testing.assert_allclose(cond.sky_sigma, sigma, rtol=0.03)
    np.testing.assert_allclose(cond.sky_sigma, record["sky_sigma"], rtol=1e-12)
    # no stars, no columns: the survey median, with a warning
    blank = np.random.default_rng(1).standard_normal((3, 160, 160)) * 0.01
    with pytest.warns(UserWarning, match="median"):
        cond, record = measure_conditions(blank, survey="bass_mzls")
    assert record["psf_source"] == ("fallback",) * 3
    assert cond.psf_fwhm == SURVEYS["bass_mzls"].fwhm_median
    # the MAD of 25,600 pixels scatters by ~0.7%
    np.testing.assert_allclose(cond.sky_sigma, 0.01, rtol=0.03)
    full = {"psfsize_g": 1.5, "psfsize_r": 1.4, "psfsize_z": 1.3}
    cond, record = measure_conditions(blank, row=full, psf_model="gaussian")
    assert record["psf_source"] == ("catalog",) * 3 and cond.psf_fwhm == (1.5, 1.4, 1.3)
    assert all(isinstance(p, GaussianPSF) for p in cond.psfs)


# --- per-field conditions -------------------------------------------------------------------
def test_conditions_distribution_is_reproducible_and_within_its_bounds():
    dist = ConditionsDistribution()
    a = [dist.draw(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(8)
    draws = [dist.draw(rng) for _ in range(600)]
    fwhm = np.array([c.psf_fwhm for c in draws])
    depth = np.array([c.depth for c in draws])
    beta = np.array([c.psf_beta for c in draws])
    lo = min(m.fwhm_range[0] for m in SURVEYS.values())
    hi = max(m.fwhm_range[1] for m in SURVEYS.values())
    assert fwhm.min() >= lo and fwhm.max() <= hi == dist.max_fwhm
    assert beta.min() >= 2.5 and beta.max() <= 4.5
    north = np.array([c.sky_mag == SURVEYS["bass_mzls"].sky_mag for c in draws])
    assert 0.3 - 0.06 < north.mean() < 0.3 + 0.06  # binomial sigma 0.019
    for name, sel in (("decals", ~north), ("bass_mzls", north)):
        m = SURVEYS[name]
        np.testing.assert_allclose(np.median(fwhm[sel], axis=0), m.fwhm_median, rtol=0.05)
        np.testing.assert_allclose(np.median(depth[sel], axis=0), m.depth_median, atol=0.07)
        assert np.all(np.abs(depth[sel] - m.depth_median) <= 3 * m.depth_sigma + 1e-9)
    # the bands of one field see correlated seeing
    assert np.corrcoef(np.log(fwhm[~north]).T)[0, 1] > 0.3
    assert all(isinstance(p, MoffatPSF) for p in draws[0].psfs)


def test_fixed_gaussian_conditions_draw_nothing():
    dist = ConditionsDistribution(survey="fixed", psf_model="gaussian")
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert dist.draw(rng) == SurveyConditions() == dist.nominal
    assert rng.bit_generator.state == state
    assert dist.max_fwhm == 1.3


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"survey": "sdss"}, "'survey'"),
        ({"psf_model": "airy"}, "'psf_model'"),
        ({"north_fraction": 1.5}, "'north_fraction'"),
        ({"moffat_beta_range": (3.0, 2.0)}, "'moffat_beta_range'"),
        ({"moffat_beta_range": (0.5, 2.0)}, "'moffat_beta_range"),
        ({"depth": (24.0, 23.4, 22.5)}, "'depth'.*fixed"),
        ({"survey": "fixed", "psf_fwhm": (1.3, 1.2)}, "'psf_fwhm'"),
    ],
)
def test_conditions_distribution_rejects_bad_values(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        ConditionsDistribution(**kwargs)


def test_observation_config_round_trips_and_names_bad_keys():
    from clusterlens.mock import MockConfig, config_from_dict, config_to_dict, preset_config

    cfg = config_from_dict({"observation": {"survey": "decals", "moffat_beta_range": [3.0, 3.0]}})
    assert cfg.observation.moffat_beta_range == (3.0, 3.0)
    assert config_from_dict(config_to_dict(cfg)) == cfg
    fixed = config_from_dict({"observation": {"survey": "fixed", "depth": [24.5, 23.9, 23.0]}})
    assert config_from_dict(config_to_dict(fixed)) == fixed
    for bad, key in (({"psf_model": "airy"}, "psf_model"), ({"survey": 3}, "survey")):
        with pytest.raises(ParameterError) as err:
            config_from_dict({"observation": bad})
        assert "observation" in str(err.value) and key in str(err.value)
    # the default holds the widest PSF any field can draw; the paper keeps Table 1's
    assert MockConfig().psf_margin == math.ceil(3 * 2.3 / PIX)
    paper = preset_config("paper")
    assert paper.observation.nominal == SurveyConditions()
    assert paper.psf_margin == math.ceil(3 * 1.3 / PIX)


# --- the simulator with per-scene conditions ------------------------------------------------
def test_simulator_observes_each_scene_with_its_own_conditions():
    from clusterlens.mock import (
        ClusterScene,
        ImageConfig,
        MockConfig,
        MockLensSimulator,
        synthetic_scene,
    )

    config = MockConfig(image=ImageConfig(cutout_size=131, crop_size=101, psf_margin=15))
    sim = MockLensSimulator(config)
    scene = synthetic_scene(config, z_lens=0.3, m500=5e14, seed=11, size=131)
    assert isinstance(scene.conditions, SurveyConditions)
    again = synthetic_scene(config, z_lens=0.3, m500=5e14, seed=11, size=131)
    assert again.conditions == scene.conditions
    np.testing.assert_array_equal(again.image, scene.image)
    sharp = SurveyConditions(psf_fwhm=(0.9, 0.9, 0.9), depth=(25.0, 24.5, 23.5))
    blurred = SurveyConditions(
        psf_fwhm=(2.0, 1.9, 1.8), depth=(23.5, 23.0, 22.0), psf_model="moffat", psf_beta=2.5
    )
    base = {k: getattr(scene, k) for k in ("image", "z_lens", "m500", "x", "y")}
    base.update(stellar_mass=scene.stellar_mass, q=scene.q, phi=scene.phi)
    results = {}
    for name, cond in (("sharp", sharp), ("blurred", blurred), ("nominal", None)):
        results[name] = sim.simulate(ClusterScene(**base, conditions=cond), seed=4)
    p = {k: r.params for k, r in results.items()}
    assert (p["sharp"]["psf_fwhm_g"], p["blurred"]["psf_fwhm_z"]) == (0.9, 1.8)
    assert p["blurred"]["psf_beta"] == 2.5 and math.isnan(p["sharp"]["psf_beta"])
    assert p["nominal"]["psf_fwhm_r"] == sim.conditions.psf_fwhm[1]
    assert p["sharp"]["depth_g"] == 25.0 and p["nominal"]["depth_z"] == sim.conditions.depth[2]
    # the same lens and source (same seed): the arc is observed differently
    if p["sharp"]["source_x"] == p["blurred"]["source_x"]:
        sharp_arc, blurred_arc = results["sharp"].arc, results["blurred"].arc
        assert sharp_arc.max() > blurred_arc.max()
        assert p["sharp"]["arc_snr"] > p["blurred"]["arc_snr"]
    with pytest.raises(ParameterError, match="pixel scale"):
        sim.simulate(ClusterScene(**base, conditions=SurveyConditions(pixel_scale=0.2)))
    with pytest.raises(ParameterError, match="'conditions'"):
        ClusterScene(**base, conditions="decals")


class _Cutouts:
    def __init__(self, images):
        self.images = images

    def get(self, ra, dec, size, bands="grz", *, cluster_id=None):
        return self.images[int(cluster_id)], None


def test_catalog_sky_reads_psfsize_columns_and_measures_the_noise():
    from astropy.table import Table

    from clusterlens.fields import SyntheticClusterField
    from clusterlens.mock import CatalogSky, ImageConfig, MockConfig

    config = MockConfig(image=ImageConfig(cutout_size=131, crop_size=101))
    truth = SurveyConditions(psf_fwhm=(1.6, 1.4, 1.2), psf_model="moffat", psf_beta=3.0)
    fields = {
        cid: SyntheticClusterField(redshift=0.3, m500=6e14, size=131, conditions=truth).draw(cid)
        for cid in (1, 2)
    }
    images = {cid: f.image for cid, f in fields.items()}
    members = Table(
        {
            "cluster_id": [1, 2],
            "ra": [150.0, 151.0],
            "dec": [2.0, 40.0],
            "z": [0.3, 0.3],
            "stellar_mass": [3e11, 3e11],
            "q": [0.8, 0.8],
            "pa": [10.0, 10.0],
        }
    )
    clusters = Table(
        rows=[(1, 150.0, 2.0, 0.3, 6e14, 1.7, 1.5, 1.3), (2, 151.0, 40.0, 0.3, 6e14, 0, 0, 0)],
        names=("cluster_id", "ra", "dec", "z", "m500", "psfsize_g", "psfsize_r", "psfsize_z"),
    )
    sky = CatalogSky(_Cutouts(images), clusters, members, config)
    scene = sky.scene(0)
    assert scene.conditions.psf_fwhm == (1.7, 1.5, 1.3)
    assert sky.records[0]["psf_source"] == ("catalog",) * 3
    # the depth is the one the cutout's own noise implies (the noise drawn: image -
    # noiseless, sky plus the shot noise of the cluster's light); in a crowded 131-pixel
    # cluster field, faint light below the source mask raises the estimate by 2-6%
    from astropy.stats import mad_std

    drawn = mad_std(fields[1].image - fields[1].noiseless, axis=(1, 2))
    ratio = scene.conditions.sky_sigma / drawn
    assert np.all((ratio > 0.98) & (ratio < 1.08))
    assert sky.scene(0).conditions is scene.conditions  # measured once per cluster
    # psfsize 0 (no data) north of Dec 32.375: stars, or else the BASS/MzLS median
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        north = sky.scene(1).conditions
    for band, source in enumerate(sky.records[1]["psf_source"]):
        assert source in ("stars", "fallback")
        if source == "fallback":
            assert north.psf_fwhm[band] == SURVEYS["bass_mzls"].fwhm_median[band]
    assert (
        CatalogSky(_Cutouts(images), clusters, members, config, measure=False).scene(0).conditions
        is None
    )


def test_paper_preset_scenes_draw_the_field_as_before():
    from clusterlens.fields import SyntheticClusterField
    from clusterlens.mock import preset_config, synthetic_scene

    paper = preset_config("paper")
    scene = synthetic_scene(paper, z_lens=0.3, m500=4e14, seed=9, size=101)
    assert scene.conditions == SurveyConditions()
    # fixed Gaussian conditions take nothing from the stream: the field is the one drawn
    # with the fixed conditions directly, as before per-field conditions
    before = SyntheticClusterField(redshift=0.3, m500=4e14, size=101, config=paper.sky).draw(9)
    np.testing.assert_array_equal(scene.image, before.image)


def test_seeing_and_depth_offsets_shift_every_field():
    from clusterlens.observe.conditions import ConditionsDistribution

    base, worse = (
        ConditionsDistribution(),
        ConditionsDistribution(seeing_offset=0.5, depth_offset=-1),
    )
    a, b = base.draw(11), worse.draw(11)
    np.testing.assert_allclose(np.subtract(b.psf_fwhm, a.psf_fwhm), 0.5)
    np.testing.assert_allclose(np.subtract(b.depth, a.depth), -1.0)
    assert worse.nominal.psf_fwhm[0] == pytest.approx(base.nominal.psf_fwhm[0] + 0.5)
    sharp = ConditionsDistribution(seeing_offset=-1.0)
    assert min(sharp.draw(2).psf_fwhm) >= 0.3
    with pytest.raises(ParameterError, match="seeing_offset"):
        ConditionsDistribution(seeing_offset=9.0)
