"""The mock-lens simulator, its configuration and dataset generation (clusterlens.mock)."""

import json

import numpy as np
import pytest

from clusterlens.datasets import DatasetError, LensDataset
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.mock import (
    CatalogSky,
    ClusterScene,
    ImageConfig,
    MockConfig,
    MockLensSimulator,
    SelectionConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    simulate_dataset,
    synthetic_scene,
)
from clusterlens.sources import COLOUR_CLASSES
from tests._data import ZHANG_CATALOG, needs_zhang

# Small images keep the tests fast: a 101-pixel crop (26") still holds 5" Einstein radii.
SMALL = MockConfig(image=ImageConfig(cutout_size=131, crop_size=101))


@pytest.fixture(scope="module")
def sim():
    return MockLensSimulator(SMALL)


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene(SMALL, z_lens=0.3, m500=5e14, seed=11)


@pytest.fixture(scope="module")
def results(sim, scene):
    return [sim.simulate(scene, seed=s) for s in range(14)]


def test_surface_brightness_is_conserved(sim, scene):
    """Total rendered flux / source flux equals the magnification measured by ray-shooting
    a 6x finer grid (lensing conserves surface brightness)."""
    from clusterlens.lensing import pixel_grid, ray_shoot

    res = sim.simulate(scene, seed=3)
    n, scale = sim.sim_size, sim.conditions.pixel_scale
    fine = 6
    x, y = pixel_grid(n * fine, scale / fine)
    bx, by = ray_shoot(res.lens, x.ravel(), y.ravel())
    sb = res.source.surface_brightness(bx, by)  # (3, N) nanomaggies / arcsec^2
    mu_fine = sb.sum() * (scale / fine) ** 2 / np.sum(res.source.fluxes)
    assert res.params["magnification"] == pytest.approx(mu_fine, rel=0.03)
    assert mu_fine > 2.0  # placed in the high-magnification region


def test_accepted_lenses_and_ranges(results, sim):
    from clusterlens.lensing import einstein_radius

    cfg = sim.config
    for r in results:
        p = r.params
        assert p["einstein_radius"] >= cfg.selection.min_einstein_radius
        assert p["arc_snr"] >= cfg.selection.min_arc_snr
        assert cfg.halo.q_range[0] <= p["halo_q"] <= cfg.halo.q_range[1]
        assert cfg.halo.phi_range[0] <= p["halo_phi"] <= cfg.halo.phi_range[1]
        src = cfg.source
        assert src.redshift.low <= p["source_redshift"] <= src.redshift.high
        assert p["source_redshift"] > p["z_lens"]
        assert src.r_e.low <= p["source_r_e"] <= src.r_e.high
        assert src.sersic_n.low <= p["source_n"] <= src.sersic_n.high
        assert src.q.low <= p["source_q"] <= src.q.high
        assert src.mag_r.low <= p["source_mag_r"] <= src.mag_r.high
        assert p["arc_visible_pixels"] >= cfg.selection.min_visible_pixels
        assert r.image.shape == r.arc.shape == (3, 101, 101)
        assert r.image.dtype == np.float32
        assert np.all(np.isfinite(r.image))
    # the map-based Einstein radius agrees with the critical-curve tracer of clusterlens.lensing
    r = next(r for r in results if not r.params["einstein_radius_truncated"])
    traced = einstein_radius(r.lens, n_pix=800, pixel_scale=0.2)
    assert r.params["einstein_radius"] == pytest.approx(traced, rel=0.03)


def test_source_colours_come_from_the_sed(results):
    # realistic default: colours from the redshifted SED, classes only label them
    for r in results:
        p = r.params
        gr = p["source_mag_g"] - p["source_mag_r"]
        assert p["source_g_minus_r"] == pytest.approx(gr)
        expected = "red" if gr >= 1.3 else "blue" if gr <= 0.8 else "green"
        assert p["source_colour"] == expected and expected in COLOUR_CLASSES
        assert np.isfinite(p["source_uv_slope"])
        assert r.source.magnitudes[1] == pytest.approx(p["source_mag_r"])


def test_same_seed_same_mock(sim, scene):
    a, b = sim.simulate(scene, seed=5), sim.simulate(scene, seed=5)
    assert np.array_equal(a.image, b.image) and a.params == b.params


def test_weak_cluster_is_rejected_cheaply(sim):
    from clusterlens.mock import LensRejected

    weak = synthetic_scene(SMALL, z_lens=0.3, m500=2e13, seed=1)
    stats = {}
    with pytest.raises(LensRejected) as err:
        sim.simulate(weak, seed=0, stats=stats)
    assert err.value.reason == "einstein_radius"
    assert stats["source_draws"] == 0  # nothing was rendered
    # it survives pickling with its reason (Dask returns a worker's exception to the client)
    import pickle

    back = pickle.loads(pickle.dumps(err.value))
    assert isinstance(back, LensRejected) and back.reason == "einstein_radius"
    assert str(back) == str(err.value)


def test_source_is_near_the_caustics(results):
    # the placement rule: the centre of the source maps from |mu| >= min_magnification
    for r in results:
        assert r.params["magnification_pixel"] >= 5.0


# --- configuration -----------------------------------------------------------------------
def test_config_round_trip_and_toml(tmp_path):
    d = config_to_dict(MockConfig())
    assert config_from_dict(d) == MockConfig()
    f = tmp_path / "mock.toml"
    f.write_text(
        "[halo]\nq_mean = 0.7\n[selection]\nmin_einstein_radius = 6.0\n"
        '[source]\nredshift = {kind = "normal", mean = 1.2, sigma = 0.3, low = 0.5, high = 2.5}\n'
    )
    cfg = load_config(f)
    assert cfg.halo.q_mean == 0.7 and cfg.selection.min_einstein_radius == 6.0
    assert cfg.source.redshift.high == 2.5


@pytest.mark.parametrize(
    "data, words",
    [
        ({"halo": {"q_mean": 1.7}}, ["halo", "q_mean", "1.7"]),
        ({"halo": {"qmean": 0.7}}, ["halo.qmean"]),
        ({"lens": {}}, ["[lens]"]),
        ({"selection": {"min_einstein_radius": -1.0}}, ["selection", "min_einstein_radius"]),
        ({"image": {"crop_size": 400}}, ["image", "crop_size"]),
        ({"source": {"redshift": {"kind": "gamma"}}}, ["source.redshift", "kind"]),
        ({"observation": {"depth": [24.0, 23.4]}}, ["observation", "depth"]),
        ({"clusters": {"redshift_range": [0.8, 0.2]}}, ["clusters", "redshift_range"]),
    ],
)
def test_bad_config_names_the_key(data, words):
    with pytest.raises(ParameterError) as err:
        config_from_dict(data)
    for w in words:
        assert w in str(err.value)


def test_cli_bad_config_writes_nothing(tmp_path, capsys):
    from clusterlens.cli import main

    f = tmp_path / "bad.toml"
    f.write_text("[halo]\nq_sigma = -0.1\n")
    out = tmp_path / "ds"
    assert main(["simulate", "--config", str(f), "--n", "2", "--out", str(out)]) == 2
    assert "q_sigma" in capsys.readouterr().err
    assert not out.exists()


# --- bad inputs ------------------------------------------------------------------------
def test_nan_member_table_names_the_column():
    img = np.zeros((3, 131, 131), np.float32)
    with pytest.raises(ParameterError, match=r"'stellar_mass'.*row 2"):
        ClusterScene(
            img, 0.3, 1e15, [0, 1, 2], [0, 1, 2], [1e11, 1e11, np.nan], [1, 1, 1], [0, 0, 0]
        )


@pytest.mark.parametrize("shape", [(2, 131, 131), (3, 131, 120), (131, 131)])
def test_bad_cutout_shape(shape):
    with pytest.raises(ParameterError, match="image"):
        ClusterScene(np.zeros(shape), 0.3, 1e15, [0.0], [0.0], [1e11], [1.0], [0.0])


class _WrongCutouts:
    """A cutout source that returns two bands."""

    def get(self, ra, dec, size, bands="grz", *, cluster_id=None):
        return np.zeros((2, size, size), np.float32), None


def test_catalog_sky_wrong_band_count_leaves_no_complete_dataset(tmp_path):
    from astropy.table import Table

    clusters = Table(
        {
            "cluster_id": [1, 2],
            "ra": [10.0, 11.0],
            "dec": [0.0, 1.0],
            "z": [0.3, 0.4],
            "m500": [1e15, 1e15],
        }
    )
    members = Table(
        {
            "cluster_id": [1, 2],
            "ra": [10.0, 11.0],
            "dec": [0.0, 1.0],
            "z": [0.3, 0.4],
            "stellar_mass": [3e11, 3e11],
            "q": [0.8, 0.8],
            "pa": [10.0, 10.0],
        }
    )
    sky = CatalogSky(_WrongCutouts(), clusters, members, SMALL)
    with pytest.raises(ParameterError, match=r"shape \(2, 131, 131\).*band"):
        simulate_dataset(tmp_path / "ds", 2, SMALL, sky=sky, workers=0, progress=False)
    with pytest.raises(DatasetError):
        LensDataset(tmp_path / "ds")


# --- datasets ------------------------------------------------------------------------------
def _images(ds):
    return np.stack([ds[i][0] for i in range(len(ds))])


def test_dataset_identical_with_one_and_two_dask_workers(tmp_path):
    """Local Dask clusters of 1 and 2 worker processes, and a named scheduler (a threaded
    cluster of 2 workers), give the bytes that one process gives."""
    from dask.distributed import LocalCluster

    ref = simulate_dataset(tmp_path / "w0", 4, SMALL, seed=9, workers=0, progress=False)
    made = {}
    for n in (1, 2):
        made[n] = simulate_dataset(
            tmp_path / f"p{n}", 4, SMALL, seed=9, workers=n, progress=False, batch_size=1
        )
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        made["scheduler"] = simulate_dataset(
            tmp_path / "s2", 4, SMALL, seed=9, progress=False,
            scheduler=cluster.scheduler_address, batch_size=1,
        )  # fmt: skip
    for ds in made.values():
        assert np.array_equal(_images(ds), _images(ref))
        assert list(ds.labels) == [1, 1, 0, 0]
        assert list(ds.params["einstein_radius"][:2]) == list(ref.params["einstein_radius"][:2])


def test_resume_does_not_rewrite(tmp_path, monkeypatch):
    import clusterlens.mock.dataset as dsmod

    made = []
    real = dsmod.make_image

    def failing(index, **kw):
        made.append(index)
        if index == 3:
            raise ClusterlensError("killed")
        return real(index, **kw)

    monkeypatch.setattr(dsmod, "make_image", failing)
    path = tmp_path / "ds"
    with pytest.raises(ClusterlensError, match="killed"):
        simulate_dataset(path, 6, SMALL, seed=2, workers=0, progress=False, batch_size=1)
    with pytest.raises(DatasetError):  # half-written: not complete
        LensDataset(path)
    assert made == [0, 1, 2, 3]
    made.clear()
    monkeypatch.setattr(
        dsmod, "make_image", lambda index, **kw: (made.append(index), real(index, **kw))[1]
    )
    ds = simulate_dataset(path, 6, SMALL, seed=2, workers=0, progress=False)
    assert made == [3, 4, 5]
    fresh = simulate_dataset(tmp_path / "fresh", 6, SMALL, seed=2, workers=0, progress=False)
    assert np.array_equal(_images(ds), _images(fresh))
    # a resume with another seed is refused rather than mixing two datasets
    with pytest.raises(DatasetError, match="seed"):
        simulate_dataset(tmp_path / "fresh", 6, SMALL, seed=3, workers=0, progress=False)
    meta = json.loads((path / "zarr.json").read_text())["attributes"]["user"]
    assert meta["seed"] == 2 and meta["n_positive"] == 3


def test_cli_and_plots(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from clusterlens.cli import main
    from clusterlens.mock import plot_mock, plot_parameter_distributions

    cfg = tmp_path / "small.toml"
    cfg.write_text("[image]\ncutout_size = 131\ncrop_size = 101\n")
    out = tmp_path / "ds"
    argv = [
        "simulate",
        "--config",
        str(cfg),
        "--n",
        "4",
        "--out",
        str(out),
        "--workers",
        "0",
        "--seed",
        "1",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert "pass the Einstein-radius cut" in capsys.readouterr().out
    ds = LensDataset(out)
    assert len(ds) == 4 and list(ds.labels) == [1, 1, 0, 0]
    fig = plot_parameter_distributions(ds.params)
    assert len([a for a in fig.axes if a.get_visible()]) >= 10
    sim = MockLensSimulator(SMALL)
    res = sim.simulate(synthetic_scene(SMALL, z_lens=0.3, m500=9e14, seed=11), seed=1)
    fig = plot_mock(res)
    assert len(fig.axes) == 3
    with pytest.raises(ParameterError):
        plot_parameter_distributions({"foo": [1.0]})


def test_selection_config_validates():
    with pytest.raises(ParameterError, match="max_halo_draws"):
        SelectionConfig(max_halo_draws=0)


class _FieldCutouts:
    """A cutout source serving synthetic fields by cluster id (FITS order, like a survey)."""

    def __init__(self, images):
        self.images = images

    def get(self, ra, dec, size, bands="grz", *, cluster_id=None):
        return self.images[int(cluster_id)], None


def test_catalog_sky_end_to_end(tmp_path):
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table, vstack

    from clusterlens.fields import SyntheticClusterField
    from clusterlens.survey.members import phi_to_pa

    images, member_tables, rows = {}, [], []
    for cid, (ra0, dec0) in ((1, (150.0, 2.0)), (2, (151.0, -3.0))):
        fld = SyntheticClusterField(redshift=0.3, m500=6e14, size=131).draw(cid)
        images[cid] = fld.image
        m = fld.members
        centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
        # x grows to the west (east-left images), y to the north
        pos = centre.spherical_offsets_by(
            -np.asarray(m["x"]) * u.arcsec, np.asarray(m["y"]) * u.arcsec
        )
        member_tables.append(Table({
            "cluster_id": np.full(len(m), cid), "ra": pos.ra.deg, "dec": pos.dec.deg,
            "z": np.full(len(m), 0.3), "stellar_mass": np.asarray(m["stellar_mass"]),
            "q": np.asarray(m["q"]), "pa": phi_to_pa(np.asarray(m["phi"])),
        }))  # fmt: skip
        rows.append((cid, ra0, dec0, 0.3, 6e14))
        if cid == 1:
            field1 = fld
    clusters = Table(rows=rows, names=("cluster_id", "ra", "dec", "z", "m500"))
    sky = CatalogSky(_FieldCutouts(images), clusters, vstack(member_tables), SMALL)
    scene = sky.scene(0)
    order = np.argsort(scene.stellar_mass)
    ref = np.argsort(np.asarray(field1.members["stellar_mass"]))
    assert np.allclose(scene.x[order], np.asarray(field1.members["x"])[ref], atol=1e-3)
    assert np.allclose(scene.y[order], np.asarray(field1.members["y"])[ref], atol=1e-3)
    assert np.allclose(scene.phi[order], np.asarray(field1.members["phi"])[ref] % 180, atol=1e-6)
    ds = simulate_dataset(
        tmp_path / "cat", 2, SMALL, sky=sky, seed=4, workers=0, progress=False, storage="float32"
    )  # lossless storage: the negative must come back bit for bit
    assert list(ds.labels) == [1, 0]
    assert list(ds.params["cluster_id"]) == ["1", "2"]  # the negative is another cluster
    assert np.array_equal(ds[1][0], images[2][:, 15:116, 15:116])  # untouched, cropped


def test_cluster_without_members(sim, scene):
    bare = ClusterScene(scene.image, 0.3, 2e15, [], [], [], [], [])
    res = sim.simulate(bare, seed=1)
    assert res.params["n_members"] == 0
    assert res.params["einstein_radius"] >= 5.0


def test_scale_for_radius_is_the_smallest(sim, scene):
    maps, _ = next(sim.lens_maps(scene, np.random.default_rng(0)))
    for theta in (3.0, 5.0, 7.0):
        s = maps.scale_for_radius(theta)
        assert s is not None
        assert maps.einstein_radius(s) >= theta > maps.einstein_radius(s * (1 - 2e-4))
    assert maps.scale_for_radius(200.0) is None


def test_placement_kernel_picks_the_pixels_of_the_numpy_rule(sim, scene):
    # the one-pass kernel of _place against the rule written as whole-map numpy expressions
    from clusterlens.mock._kernels import placement_candidates

    pcfg, m, c = sim.config.placement, sim.margin, sim.crop
    maps, _ = next(sim.lens_maps(scene, np.random.default_rng(0)))
    theta_e = maps.einstein_radius(1.0)
    assert theta_e > 5.0
    for s in (1.0, 0.8, 0.6):
        fxx, fxy, fyy = maps.fxx, maps.fxy, maps.fyy
        det = (1.0 - s * fxx) * (1.0 - s * fyy) - (s * fxy) ** 2
        kappa = 0.5 * (fxx + fyy) * s
        gamma = np.hypot(0.5 * (fxx - fyy), fxy) * s
        inner = np.zeros(det.shape, bool)
        inner[m : m + c, m : m + c] = True
        ok = (
            inner
            & (np.abs(det) * pcfg.min_magnification <= 1.0)
            & (np.abs(1.0 - kappa - gamma) < np.abs(1.0 + gamma - kappa))
            & (sim._r <= pcfg.max_radius * theta_e)
        )
        want = np.flatnonzero(ok)
        idx, d, w = placement_candidates(
            fxx, fxy, fyy, sim._r, s, pcfg.min_magnification, pcfg.max_radius * theta_e,
            m, m + c, pcfg.magnification_weight_cap,
        )  # fmt: skip
        assert want.size > 50
        np.testing.assert_array_equal(idx, want)
        np.testing.assert_array_equal(d, det.ravel()[want])
        cap = pcfg.magnification_weight_cap
        np.testing.assert_array_equal(w, np.minimum(1.0 / np.abs(det.ravel()[want]), cap))


def test_lens_maps_hold_the_summed_hessian_and_kappa_plus_gamma(sim, scene):
    maps, _ = next(sim.lens_maps(scene, np.random.default_rng(4)))
    xf, yf = sim._x.ravel(), sim._y.ravel()
    halo, gal = maps.halo._hessian(xf, yf), maps.members._hessian(xf, yf)
    fxx, fxy, fyy = ((a + b).reshape(maps.shape) for a, b in zip(halo, gal, strict=True))
    for got, want in ((maps.fxx, fxx), (maps.fxy, fxy), (maps.fyy, fyy)):
        np.testing.assert_array_equal(got, want)
    kpg = 0.5 * (fxx + fyy) + np.hypot(0.5 * (fxx - fyy), fxy)
    np.testing.assert_array_equal(maps.kappa_plus_gamma, kpg)


def test_rescaled_map_equals_lens_built_at_the_source_redshift(results, scene):
    """One map at z_ref times D_ls/D_s ratios == the lens made directly for z_s."""
    from clusterlens.profiles import ENFW

    r = results[1]
    p = r.params
    halo = ENFW.from_m500(
        scene.m500, scene.z_lens, p["source_redshift"], p["halo_q"], p["halo_phi"],
        c500c=p["halo_c500c"],
    ).scaled(p["halo_mass_fraction"])  # fmt: skip
    # members (dPIE) and BCG built directly for the source's redshift
    members = MockLensSimulator(SMALL).members_lens(scene, p["source_redshift"])
    x = np.array([-7.3, 0.4, 3.1, 12.0])
    y = np.array([2.2, -5.5, 0.1, -8.0])
    direct = np.array((halo + members).deflection(x, y))
    scaled = np.array(r.lens.deflection(x, y))
    assert np.allclose(scaled, direct, rtol=1e-9, atol=1e-12)


# --- the mass model: profiles by name, presets, the mass budget ------------------------------


def test_paper_preset_keeps_table1_mass_model(scene):
    from clusterlens.mock import preset_config
    from clusterlens.profiles import Composite, DPIEPopulation, SIEPopulation

    paper = preset_config("paper", {"image": {"cutout_size": 131, "crop_size": 101}})
    assert (paper.members.profile, paper.halo.mass_budget, paper.bcg.enabled) == (
        "sie",
        False,
        False,
    )
    sim_paper = MockLensSimulator(paper)
    members = sim_paper.members_lens(scene, 1.0)
    assert isinstance(members, SIEPopulation) and len(members) == scene.n_members
    table1 = SIEPopulation.from_stellar_masses(
        scene.stellar_mass, scene.x, scene.y, scene.z_lens, 1.0, q=scene.q, phi=scene.phi
    )
    np.testing.assert_allclose(members.theta_e, table1.theta_e, rtol=1e-13)
    assert sim_paper.halo_mass_fraction(scene, members, 1.0) == (1.0, 0.0)
    realistic = MockLensSimulator(SMALL).members_lens(scene, 1.0)
    assert isinstance(realistic, Composite)
    pop, bcg = realistic.components
    assert isinstance(pop, DPIEPopulation) and len(pop) == scene.n_members - 1
    assert len(bcg) == 1 and bcg.r_cut[0] > pop.r_cut.max()  # the BCG is its own component


def test_mass_budget_halo_plus_galaxies_is_m500(sim, scene):
    """The halo's NFW mass inside R500 plus the dPIEs' 3D masses (physical formulas, written
    out here) adds up to M500."""
    from astropy import units as u
    from astropy.constants import G

    from clusterlens import cosmology as cosmo

    z_l, z_s = scene.z_lens, 1.2
    galaxies = sim.members_lens(scene, z_s)
    fraction, m_gal = sim.halo_mass_fraction(scene, galaxies, z_s)
    assert 0.0 < 1.0 - fraction < 0.3
    halo, _ = sim.draw_halo(scene, np.random.default_rng(5), z_s, mass_fraction=fraction)
    d_d, _, _ = cosmo.angular_diameter_distances(z_l, z_s)
    arcsec = np.pi / 180 / 3600
    rs_mpc = halo.rs * arcsec * d_d
    kappa_s = halo.alpha_rs / (4 * halo.rs * (1 + np.log(0.5)))
    rho0 = kappa_s * cosmo.sigma_crit(z_l, z_s) / rs_mpc
    r500 = cosmo.r500(scene.m500, z_l)
    x = r500 / rs_mpc
    m_halo = 4 * np.pi * rho0 * rs_mpc**3 * (np.log1p(x) - x / (1 + x))
    # every galaxy: M_3d(r) = (2 sigma^2 / G) s / (s - a) [s atan(r/s) - a atan(r/a)]
    m_check = 0.0
    for part in galaxies.components:
        te = part.theta_e * arcsec
        sigma2 = (
            te
            / (4 * np.pi)
            * (cosmo.angular_diameter_distances(z_l, z_s)[1])
            / (cosmo.angular_diameter_distances(z_l, z_s)[2])
            * (2.99792458e5) ** 2
        )
        a = part.r_core * arcsec * d_d * 1e3
        s = part.r_cut * arcsec * d_d * 1e3
        r = r500 * 1e3
        m3d = (
            2
            * sigma2
            / G.to_value(u.kpc * u.km**2 / u.s**2 / u.Msun)
            * s
            / (s - a)
            * (s * np.arctan(r / s) - a * np.arctan(r / np.maximum(a, 1e-30)))
        )
        m_check += m3d.sum()
    assert m_gal == pytest.approx(m_check, rel=1e-6)
    assert m_halo + m_gal == pytest.approx(scene.m500, rel=2e-3)


def test_halo_and_member_profiles_by_registry_name(scene):
    from clusterlens.profiles import ENFW, EllipticalNFW, register_profile

    cse = MockLensSimulator(config_from_dict({"halo": {"profile": "cse_nfw"}}))
    halo, _ = cse.draw_halo(scene, np.random.default_rng(0), 1.0)
    assert isinstance(halo, EllipticalNFW)

    class MyHalo(ENFW):
        pass

    register_profile(MyHalo, name="test_my_halo")
    mine = MockLensSimulator(config_from_dict({"halo": {"profile": "test_my_halo"}}))
    assert isinstance(mine.draw_halo(scene, np.random.default_rng(0), 1.0)[0], MyHalo)
    for table, name, words in [
        ("halo", "nfw", "from_m500"),
        ("halo", "no_such_profile", "not a registered profile"),
        ("members", "enfw", "from_sigma"),
        ("bcg", "nfw", "from_sigma"),
    ]:
        with pytest.raises(ParameterError, match=f"{table}.profile") as err:
            MockLensSimulator(config_from_dict({table: {"profile": name}}))
        assert words in str(err.value)
    with pytest.raises(ParameterError, match=r"'halo\.profile'"):
        config_from_dict({"halo": {"profile": 3}})
    with pytest.raises(ParameterError, match=r"'members\.r_core_star_kpc'"):
        config_from_dict({"members": {"r_core_star_kpc": 50.0}})


def test_bcg_is_the_flagged_member_or_the_most_massive_near_the_centre(sim, scene):
    assert scene.is_bcg is not None and sim.bcg_index(scene) == int(np.argmax(scene.is_bcg))
    kw = {k: getattr(scene, k) for k in ("x", "y", "stellar_mass", "q", "phi")}
    unflagged = ClusterScene(scene.image, scene.z_lens, scene.m500, **kw)
    near = np.hypot(scene.x, scene.y) <= sim.config.bcg.max_offset
    expected = np.flatnonzero(near)[np.argmax(scene.stellar_mass[near])]
    assert sim.bcg_index(unflagged) == expected
    with pytest.raises(ParameterError, match="is_bcg"):
        ClusterScene(scene.image, scene.z_lens, scene.m500, **kw, is_bcg=[True])


@needs_zhang
@pytest.mark.slow
def test_published_haloes_realistic_model_below_paper_and_above_halo_alone():
    """40 of the 485 published haloes (their M500 and z) on a coarse grid: the truncated,
    mass-budgeted model predicts smaller Einstein radii than the paper's SIE-on-full-halo
    model and larger than the halo alone."""
    from astropy.table import Table

    from clusterlens.mock import preset_config

    table = Table.read(ZHANG_CATALOG, format="ascii.csv")
    rows = np.random.default_rng(0).choice(len(table), 40, replace=False)
    small = {"image": {"cutout_size": 131, "crop_size": 101}}
    sims = {
        "realistic": MockLensSimulator(preset_config("realistic", small)),
        "paper": MockLensSimulator(preset_config("paper", small)),
        "halo": MockLensSimulator(
            preset_config("paper", {**small, "members": {"min_stellar_mass": 1e20}})
        ),
    }
    theta = {k: [] for k in sims}
    budget = []
    for i in rows:
        z_l, m500 = float(table["PZ_BCG"][i]), 10.0 ** float(table["M_500"][i])
        sc = synthetic_scene(SMALL, z_lens=z_l, m500=m500, seed=int(i))
        real = sims["realistic"]
        f, m_gal = real.halo_mass_fraction(sc, real.members_lens(sc, 1.5), 1.5)
        budget.append((f, m_gal / m500))
        for name, s in sims.items():
            theta[name].append(s.einstein_radius(sc, 1.5, seed=int(i), grid=(72, 0.8)))
    f, gal = np.array(budget).T
    np.testing.assert_allclose(f + gal, 1.0, rtol=1e-12)  # halo + galaxies = M500
    assert np.all((gal > 0.0) & (gal < 0.3))
    med = {k: float(np.median(v)) for k, v in theta.items()}
    assert med["halo"] < med["realistic"] < med["paper"]
    assert np.all(np.array(theta["realistic"]) <= np.array(theta["paper"]) + 0.5)


# --- sources: the paper preset, second sources, the visibility rule ---------------------------
def test_paper_preset_mock_is_the_same_as_before_the_realistic_sources():
    from clusterlens.mock import preset_config

    cfg = preset_config("paper", {"image": {"cutout_size": 131, "crop_size": 101}})
    assert cfg.selection.min_visible_pixels == 0 and cfg.source.colour_model == "classes"
    assert config_from_dict(config_to_dict(cfg)) == cfg
    sim = MockLensSimulator(cfg)
    assert sim.z_ref == 1.495
    res = sim.simulate(synthetic_scene(cfg, z_lens=0.3, m500=5e14, seed=11), seed=0)
    # figures of this mock before the realistic population existed (same seeds)
    p = res.params
    assert p["source_redshift"] == pytest.approx(0.9071537349620822, rel=1e-12)
    assert p["source_mag_r"] == pytest.approx(24.548505284754043, rel=1e-12)
    assert p["source_r_e"] == pytest.approx(0.2062018009483038, rel=1e-12)
    assert p["einstein_radius"] == pytest.approx(15.324636570396931, rel=1e-12)
    # the S/N also depends on the noise model (per-field conditions changed it by 2e-4)
    assert p["arc_snr"] == pytest.approx(31.30816722458187, rel=1e-3)
    assert p["second_source"] == 0 and p["source_n_clumps"] == 0


def test_second_source_is_lensed_at_its_own_redshift(scene):
    from clusterlens.mock import preset_config

    cfg = preset_config(
        "realistic",
        {
            "image": {"cutout_size": 131, "crop_size": 101},
            "source": {"second_source_probability": 1.0},
        },
    )
    sim = MockLensSimulator(cfg)
    res = next(
        r for r in (sim.simulate(scene, seed=s) for s in range(6)) if r.params["second_source"]
    )
    p = res.params
    z2 = p["second_source_redshift"]
    assert z2 > p["z_lens"] and z2 != p["source_redshift"]
    ratio = sim._distance_ratio(p["z_lens"], z2) / sim._distance_ratio(p["z_lens"], sim.z_ref)
    assert p["second_source_deflection_scale"] == pytest.approx(float(ratio), rel=1e-9)
    assert p["second_source_magnification"] > 1.0
    assert res.second_source is not None and res.second_source.x == p["second_source_x"]
    # the arc holds both families: more light than the first source's alone
    first_only = p["magnification"] * np.sum(res.source.fluxes)
    assert res.arc.sum() > 0.5 * first_only


def test_visibility_rule_counts_pixels_above_the_noise():
    from clusterlens.mock.simulator import visible_pixels
    from clusterlens.observe import SurveyConditions, arc_snr

    cond = SurveyConditions()
    sigma = cond.sky_sigma
    # a smooth arc at 0.5 sigma over 4000 pixels: a matched-filter S/N of ~30, yet no pixel
    # stands out of the noise
    faint = np.zeros((3, 100, 100))
    faint[:, 20:60, :] = 0.5 * sigma[:, None, None]
    assert arc_snr(faint, cond, combine=True) > 10.0
    assert visible_pixels(faint, cond, 1.0) == 0
    compact = np.zeros((3, 100, 100))
    compact[1, 50:53, 50:53] = 5.0 * sigma[1]
    assert visible_pixels(compact, cond, 1.0) == 9  # one band is enough
    assert visible_pixels(compact, cond, 10.0) == 0


def test_visibility_rule_rejects_and_is_configurable(scene):
    from clusterlens.mock import LensRejected

    cfg = config_from_dict(
        {
            "image": {"cutout_size": 131, "crop_size": 101},
            "selection": {"min_visible_pixels": 10**6, "max_halo_draws": 1, "max_source_draws": 2},
        }
    )
    stats = {}
    with pytest.raises(LensRejected) as err:
        MockLensSimulator(cfg).simulate(scene, seed=1, stats=stats)
    assert err.value.reason in ("arc_visibility", "arc_snr", "placement")
    assert stats["visibility_rejected"] >= 1
    with pytest.raises(ParameterError, match="selection.visible_pixel_sigma"):
        config_from_dict({"selection": {"visible_pixel_sigma": 0.0}})
    with pytest.raises(ParameterError, match="source.clump_count"):
        config_from_dict({"source": {"clump_count": [3, 1]}})
    with pytest.raises(ParameterError, match="source.redshift"):
        config_from_dict({"source": {"redshift": {"kind": "smail", "alpha": 1.0}}})


def test_an_unknown_concentration_model_names_the_key_and_the_choices():
    with pytest.raises(ParameterError, match=r"'halo\.concentration_model'.*ishiyama21"):
        config_from_dict({"halo": {"concentration_model": "nope"}})
