import math

import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.observe import (
    FWHM_TO_SIGMA,
    GaussianPSF,
    PixelPSF,
    SurveyConditions,
    add_arc_noise,
    arc_snr,
    convolve,
    inject,
    legacy_surveys_psfs,
    mag_to_nanomaggies,
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
