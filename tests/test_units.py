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
        (
            lambda: profiles.SIE(1 * u.kpc),
            r"'theta_e' parameter of SIE must be in arcsec \(angle\).*kpc \(length\)",
        ),
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
            r"'r_cut' parameter of DPIE must be in arcsec \(angle\)",
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


# --- provenance of the tables the library writes ---------------------------------------------


def _check_provenance(meta, *, model=None):
    from clusterlens import __version__
    from clusterlens._provenance import unix_time

    assert meta["clusterlens_version"] == __version__
    assert meta["cosmology"].startswith("FlatLambdaCDM(H0=70 km / (Mpc s), Om0=0.3")
    assert ("model_sha256" in meta) == (model is not None)
    if model is not None:
        from clusterlens._provenance import sha256_file

        assert meta["model_sha256"] == sha256_file(model)
    # ISO 8601 UTC, written within the last hour
    import time

    assert meta["created"].endswith("+00:00") and "T" in meta["created"]
    assert abs(unix_time(meta["created"]) - time.time()) < 3600


def test_dates_are_iso_strings_and_old_unix_floats_still_read():
    from astropy.cosmology import Planck18

    from clusterlens._provenance import cosmology_description, iso_utc, provenance, unix_time

    assert iso_utc(0) == "1970-01-01T00:00:00+00:00"
    assert iso_utc(1.7e9) == "2023-11-14T22:13:20+00:00"
    assert unix_time("2023-11-14T22:13:20+00:00") == 1.7e9
    assert unix_time("2023-11-14T22:13:20") == 1.7e9  # no zone: UTC
    assert unix_time(1.7e9) == unix_time("1700000000.0") == 1.7e9  # what older files hold
    assert np.isnan(unix_time("")) and np.isnan(unix_time(None))
    with pytest.raises(ValueError, match="neither an ISO 8601 date"):
        unix_time("yesterday")
    text = cosmology_description(Planck18)
    assert text.startswith("FlatLambdaCDM(name='Planck18', H0=67.66 km / (Mpc s), Om0=0.30966")
    assert "m_nu=[0, 0, 0.06] eV" in text
    _check_provenance(provenance())


def test_fits_tables_keep_long_metadata_keys_without_warnings(tmp_path):
    import warnings

    from astropy.table import Table

    from clusterlens._provenance import provenance
    from clusterlens.survey.catalogs import read_table, write_table

    table = Table({"ra": [1.0, 2.0]})
    table["ra"].unit = "deg"
    table.meta.update(provenance())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "HIERARCH card will be created" warning
        write_table(table, tmp_path / "t.fits")
    back = read_table(tmp_path / "t.fits")
    assert back["ra"].unit == u.deg
    _check_provenance(back.meta)
    assert table.meta == provenance(created=back.meta["created"])  # the input is unchanged


def test_crossmatch_outputs_carry_units_and_provenance(tmp_path):
    from astropy.table import Table

    from clusterlens.survey import crossmatch
    from clusterlens.survey.catalogs import read_table, write_table

    a = Table({"ra": [10.0, 20.0], "dec": [0.0, 0.0]})
    b = Table({"RA": [10.0 + 1 / 3600, 30.0], "DEC": [0.0, 0.0]})
    result = crossmatch(a, b, known_columns=("RA", "DEC"))
    for table in (result.matched, result.new, result.missed):
        _check_provenance(table.meta)
    assert result.matched["ra"].unit == result.matched["known_DEC"].unit == u.deg
    assert result.matched["separation"].unit == u.arcsec
    assert result.new["dec"].unit == result.missed["RA"].unit == u.deg
    assert a["ra"].unit is None  # the caller's table is not touched
    write_table(result.matched, tmp_path / "m.ecsv")
    back = read_table(tmp_path / "m.ecsv")
    assert back["known_RA"].unit == u.deg and back.meta["crossmatch_radius_arcsec"] == 5.0
    _check_provenance(back.meta)


def test_grading_source_table_units():
    from clusterlens.loop.grading import count_members_in_cutout

    image = np.zeros((3, 41, 41))
    image[:, 18:23, 18:23] = [[[1.0]], [[2.0]], [[3.0]]]
    image += np.random.default_rng(0).normal(0, 0.01, image.shape)
    n, sources = count_members_in_cutout(image)
    assert n == 1
    assert sources["x"].unit == sources["y"].unit == u.pix and sources["colour"].unit == u.mag
    _check_provenance(sources.meta)


def test_scores_tables_carry_units_model_checksum_and_dates(tmp_path):
    import pyarrow.parquet as pq
    import torch
    from astropy.table import Table

    from clusterlens._provenance import restore_parquet_metadata
    from clusterlens.datasets import write_toy_dataset
    from clusterlens.nets import AsinhStretch, get_network, save_checkpoint
    from clusterlens.nets.scoring import Scorer

    torch.manual_seed(0)
    model = get_network("resnet18", widths=[8, 16, 32, 64])
    model_path = save_checkpoint(
        tmp_path / "best.pt", model, transform=AsinhStretch(), config={"crop": 32}
    )
    dataset = write_toy_dataset(tmp_path / "ds", 6, size=40)
    scorer = Scorer(model_path, batch_size=4, chunk_size=5, progress=False)
    table = scorer.score(dataset, out=tmp_path / "scores.parquet")
    _check_provenance(table.meta, model=model_path)
    # the Parquet file holds the units and metadata as astropy's writer stores them
    arrow = pq.read_table(tmp_path / "scores.parquet")
    plain = Table({n: arrow.column(n).to_numpy() for n in arrow.column_names})
    restore_parquet_metadata(plain, arrow.schema.metadata)
    assert plain["ra"].unit == u.deg and plain.meta["n_failed"] == 0
    _check_provenance(plain.meta, model=model_path)
    for suffix in ("fits", "ecsv"):
        scorer.score(dataset, out=tmp_path / f"scores.{suffix}")
        back = Table.read(tmp_path / f"scores.{suffix}")
        assert back["dec"].unit == u.deg
        _check_provenance(back.meta, model=model_path)


def test_dataset_metadata_has_creation_date_and_param_units(tmp_path):
    from clusterlens.datasets import DatasetWriter, LensDataset

    writer = DatasetWriter(
        tmp_path / "ds", 2, (3, 8, 8), attrs={"param_units": {"einstein_radius": "arcsec"}}
    )
    for i in range(2):
        writer.write(i, np.zeros((3, 8, 8), np.float32), i % 2, {"einstein_radius": 5.0 + i})
    ds = writer.finalize()
    from clusterlens._provenance import unix_time

    assert abs(unix_time(ds.attrs["created"]) - __import__("time").time()) < 3600
    assert ds.params["einstein_radius"].unit == u.arcsec
    assert LensDataset(tmp_path / "ds").subset([1]).params["einstein_radius"].unit == u.arcsec


def test_mock_dataset_records_cosmology_and_param_units(tmp_path):
    from clusterlens.mock import ImageConfig, MockConfig, simulate_dataset
    from clusterlens.mock.dataset import PARAM_UNITS

    config = MockConfig(image=ImageConfig(cutout_size=131, crop_size=101))
    ds = simulate_dataset(tmp_path / "ds", 2, config, n_positive=1, workers=0, progress=False)
    user = ds.attrs["user"]
    assert user["cosmology"].startswith("FlatLambdaCDM(H0=70 km / (Mpc s), Om0=0.3")
    assert user["param_units"] == PARAM_UNITS
    assert ds.params["einstein_radius"].unit == u.arcsec and ds.params["m500"].unit == u.Msun
    assert ds.params["psf_fwhm_r"].unit == u.arcsec and ds.params["depth_g"].unit == u.mag
    missing = set(PARAM_UNITS) - set(ds.params.colnames)
    assert not missing, f"PARAM_UNITS names columns the simulator does not write: {missing}"


def test_image_plane_coordinates_are_converted_not_stripped():
    sie = profiles.SIE(1.5)
    ax, ay = sie.deflection(np.array([0.05]) * u.arcmin, np.array([4.0]) * u.arcsec)
    bx, by = sie.deflection(np.array([3.0]), np.array([4.0]))
    np.testing.assert_array_equal(ax, bx)
    np.testing.assert_array_equal(ay, by)
    with pytest.raises(ParameterError, match=r"'x' parameter of SIE must be in arcsec"):
        sie.convergence(1 * u.kpc, 0.0)


def test_a_dimensionless_quantity_for_a_length_is_refused():
    from clusterlens import cosmology as cosmo

    with pytest.raises(ParameterError, match="must be in Mpc .* Got a dimensionless Quantity"):
        cosmo.m500(0.9 * u.dimensionless_unscaled, 0.3)


def test_loop_export_carries_units_and_provenance(tmp_path):
    import warnings

    from astropy.table import Table

    from clusterlens.loop import SearchProject

    objects = Table({"id": ["a", "b"], "ra": [1.0, 2.0], "dec": [0.0, 0.0], "z": [0.3, 0.4]})
    project = SearchProject.create(tmp_path / "p.sqlite", objects)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = project.export_catalog(tmp_path / "cat.fits")
    back = Table.read(tmp_path / "cat.fits")
    for table in (written, back):
        assert table["RA_BCG"].unit == u.deg and table["R_500"].unit == u.Mpc
        assert table["R_EIN"].unit == table["SHAPE_R_BCG"].unit == u.arcsec
        _check_provenance(table.meta)
