"""Catalog readers, sky -> image offsets, simulator inputs and cross-matching."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS

from clusterlens.cli import main
from clusterlens.errors import ParameterError
from clusterlens.survey import (
    CatalogError,
    ClusterColumns,
    MemberColumns,
    cluster_inputs,
    crossmatch,
    pa_to_phi,
    phi_to_pa,
    read_cluster_catalog,
    read_member_catalog,
    read_table,
    read_zhang2026_candidates,
    sky_to_image,
    write_table,
)
from tests._data import ZHANG_CATALOG, needs_zhang

ZHANG = ZHANG_CATALOG


def zou_clusters(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return Table(
        {
            "CLUSTER_ID": np.arange(1000, 1000 + n),
            "RA_BCG": rng.uniform(0, 360, n),
            "DEC_BCG": rng.uniform(-30, 80, n),
            "PZ_BCG": rng.uniform(0.1, 0.9, n),
            "RICHNESS": rng.uniform(10, 80, n),
            "R_500": rng.uniform(0.5, 1.2, n),
            "M_500": rng.uniform(13.7, 15.0, n),
            "EXTRA": np.array(["x"] * n),
        }
    )


@pytest.mark.parametrize("suffix", [".fits", ".ecsv", ".csv", ".parquet"])
def test_cluster_catalog_round_trip(tmp_path, suffix):
    src = zou_clusters()
    path = tmp_path / f"clusters{suffix}"
    write_table(src, path)
    t = read_cluster_catalog(path)
    assert t.colnames[:7] == ["cluster_id", "ra", "dec", "z", "richness", "r500", "m500"]
    assert "EXTRA" in t.colnames
    np.testing.assert_array_equal(t["cluster_id"], src["CLUSTER_ID"])
    np.testing.assert_allclose(t["ra"], src["RA_BCG"], rtol=1e-15)
    np.testing.assert_allclose(t["m500"], 10 ** src["M_500"], rtol=1e-12)
    assert t["m500"].unit == u.Msun and t["r500"].unit == u.Mpc and t["ra"].unit == u.deg
    # The canonical table itself round-trips through every format, units included.
    again = tmp_path / f"canonical{suffix}"
    write_table(t, again)
    back = read_table(again)
    np.testing.assert_allclose(back["m500"], t["m500"], rtol=1e-12)
    if suffix != ".csv":
        assert back["m500"].unit == u.Msun


def test_write_table_refuses_to_overwrite_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "c.ecsv"
    write_table(zou_clusters(), path)
    with pytest.raises(CatalogError, match="exists"):
        write_table(zou_clusters(), path)
    write_table(zou_clusters(2), path, overwrite=True)
    assert len(read_table(path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.ecsv"]


def test_custom_mapping_and_clear_errors(tmp_path):
    src = zou_clusters()
    src.rename_columns(
        ["CLUSTER_ID", "RA_BCG", "DEC_BCG", "PZ_BCG"], ["CL", "RAdeg", "DEdeg", "zph"]
    )
    src["M500"] = 10 ** src["M_500"]
    cols = ClusterColumns(
        cluster_id="CL", ra="RAdeg", dec="DEdeg", z="zph", richness=None, r500=None,
        m500="M500", m500_is_log10=False,
    )  # fmt: skip
    t = read_cluster_catalog(src, columns=cols)
    np.testing.assert_allclose(t["m500"], src["M500"])
    with pytest.raises(CatalogError, match=r"'RA_BCG' \(for ra\)"):
        read_cluster_catalog(src)
    bad = zou_clusters()
    bad["DEC_BCG"][2] = 95.0
    with pytest.raises(CatalogError, match="row 2"):
        read_cluster_catalog(bad)
    with pytest.raises(CatalogError, match="does not exist"):
        read_table(tmp_path / "none.fits")
    with pytest.raises(CatalogError, match="format"):
        read_table(tmp_path / "cat.txt")
    (tmp_path / "broken.fits").write_bytes(b"not a fits file")
    with pytest.raises(CatalogError, match="Cannot read"):
        read_table(tmp_path / "broken.fits")
    with pytest.raises(ParameterError, match="'ra' parameter of ClusterColumns"):
        ClusterColumns(ra="")
    with pytest.raises(ParameterError, match="exactly one shape"):
        MemberColumns(e1="E1", e2="E2")


def zou_members(**shape):
    """Three members of two clusters in the Zou et al. layout, with the given shape columns."""
    columns = {
        "CLUSTER_ID": [1, 1, 2],
        "RA": [10.0, 10.001, 20.0],
        "DEC": [5.0, 5.0, -3.0],
        "PZ": [0.3, 0.31, 0.5],
        "MSTAR": [11.0, 10.5, 10.0],
    }
    return Table(columns | shape)


@pytest.mark.parametrize("suffix", [".fits", ".parquet"])
def test_member_catalog_round_trip(tmp_path, suffix):
    src = zou_members(Q=[0.9, 0.5, 1.0], PA=[10.0, 200.0, -30.0])
    write_table(src, tmp_path / f"m{suffix}")
    t = read_member_catalog(tmp_path / f"m{suffix}")
    np.testing.assert_allclose(t["stellar_mass"], 10 ** src["MSTAR"])
    np.testing.assert_allclose(t["pa"], [10.0, 20.0, 150.0])
    np.testing.assert_allclose(t["q"], src["Q"])
    bad = src.copy()
    bad["Q"][1] = 1.5
    with pytest.raises(CatalogError, match="'Q' .* row 1"):
        read_member_catalog(bad)


def test_member_catalog_shapes_from_e1_e2():
    q_true = np.array([1.0, 0.5, 0.8])
    pa_true = np.array([0.0, 30.0, 120.0])
    e = (1 - q_true) / (1 + q_true)
    members = zou_members(
        E1=e * np.cos(np.radians(2 * pa_true)), E2=e * np.sin(np.radians(2 * pa_true))
    )
    t = read_member_catalog(members, columns=MemberColumns(q=None, pa=None, e1="E1", e2="E2"))
    np.testing.assert_allclose(t["q"], q_true)
    np.testing.assert_allclose(t["pa"][1:], pa_true[1:])
    np.testing.assert_allclose(t["stellar_mass"], [1e11, 10**10.5, 1e10])
    assert "E1" not in t.colnames


def test_sky_to_image_convention_matches_a_north_up_east_left_wcs():
    ra0, dec0 = 150.0, 60.0
    x, y = sky_to_image([ra0, ra0, ra0 + 10 / 3600 / np.cos(np.radians(dec0))], [
        dec0 + 10 / 3600, dec0, dec0
    ], ra0, dec0)  # fmt: skip
    np.testing.assert_allclose([x[0], y[0]], [0, 10], atol=1e-6)  # north: +y
    np.testing.assert_allclose([x[1], y[1]], [0, 0], atol=1e-9)
    np.testing.assert_allclose([x[2], y[2]], [-10, 0], atol=1e-3)  # east: -x
    # Independent check: a TAN WCS like the Legacy Surveys cutouts (RA falls with column).
    scale = 0.262
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [51, 51]
    w.wcs.cdelt = [-scale / 3600, scale / 3600]
    rng = np.random.default_rng(3)
    ra = ra0 + rng.uniform(-0.01, 0.01, 50)
    dec = dec0 + rng.uniform(-0.005, 0.005, 50)
    px, py = w.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg))
    x, y = sky_to_image(ra, dec, ra0, dec0)
    np.testing.assert_allclose(x, (px - 50) * scale, atol=1e-6)
    np.testing.assert_allclose(y, (py - 50) * scale, atol=1e-6)


def test_position_angle_conversion():
    np.testing.assert_allclose(pa_to_phi([0, 90, 45, 170]), [90, 0, 135, 80])
    np.testing.assert_allclose(phi_to_pa(pa_to_phi([0, 33, 179])), [0, 33, 179])


def test_cluster_inputs_selects_members_and_converts_everything():
    clusters = read_cluster_catalog(zou_clusters(2))
    c0 = clusters[0]
    ra0, dec0 = float(c0["ra"]), float(c0["dec"])
    centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    pos = [
        centre,
        centre.directional_offset_by(0 * u.deg, 20 * u.arcsec),
        centre.directional_offset_by(90 * u.deg, 30 * u.arcsec),
        centre.directional_offset_by(90 * u.deg, 200 * u.arcsec),
    ]
    members = read_member_catalog(
        Table(
            {
                "CLUSTER_ID": [c0["cluster_id"]] * 4 + [clusters[1]["cluster_id"]],
                "RA": [p.ra.deg for p in pos] + [float(clusters[1]["ra"])],
                "DEC": [p.dec.deg for p in pos] + [float(clusters[1]["dec"])],
                "PZ": [0.3] * 5,
                "MSTAR": [11.5, 11.0, 10.5, 10.0, 10.0],
                "Q": [0.9, 0.5, 0.6, 0.7, 0.8],
                "PA": [0.0, 90.0, 45.0, 10.0, 0.0],
            }
        )
    )
    inp = cluster_inputs(c0, members, max_radius=100.0, exclude_bcg=True)
    assert inp.n_members == 2
    np.testing.assert_allclose(inp.x, [0.0, -30.0], atol=1e-6)
    np.testing.assert_allclose(inp.y, [20.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(inp.stellar_mass, [1e11, 10**10.5])
    np.testing.assert_allclose(inp.phi, [0.0, 135.0])
    assert inp.m500 == pytest.approx(float(c0["m500"]))
    assert inp.halo_kwargs() == {"m500": inp.m500, "z_lens": inp.z_lens}
    # the documented call, made for real (it raised while the keys were x, y)
    from clusterlens.profiles import SIEPopulation

    galaxies = SIEPopulation.from_stellar_masses(**inp.members_kwargs(), z_source=2.0)
    assert len(galaxies) == 2
    np.testing.assert_allclose(galaxies.x0, inp.x)
    np.testing.assert_allclose(galaxies.y0, inp.y)
    assert np.all(galaxies.theta_e > 0)
    tab = inp.members_table()
    assert tab["x"].unit == u.arcsec and len(tab) == 2
    # one description from the catalogue to the simulator: the scene takes the inputs whole
    from clusterlens.mock import ClusterScene, MockLensSimulator

    image = np.zeros((3, 223, 223), dtype=np.float32)
    scene = ClusterScene.from_inputs(inp, image)
    assert (scene.cluster_id, scene.z_lens, scene.m500) == (inp.cluster_id, inp.z_lens, inp.m500)
    for name in ("x", "y", "stellar_mass", "q", "phi"):
        np.testing.assert_array_equal(getattr(scene, name), getattr(inp, name))
    assert ClusterScene.from_inputs(inp, image, m500=2e14).m500 == 2e14
    halo, galaxy_lens = MockLensSimulator().draw_halo(scene, np.random.default_rng(0), 1.0)
    assert halo is not None and galaxy_lens is not None
    assert cluster_inputs(c0, members).n_members == 4
    with pytest.raises(ParameterError, match="'cluster' parameter"):
        cluster_inputs(clusters, members)
    with pytest.raises(CatalogError, match="lacks the canonical column .ra."):
        cluster_inputs(c0, Table({"cluster_id": [1]}))


@needs_zhang
def test_zhang2026_reader():
    t = read_zhang2026_candidates(ZHANG)
    assert len(t) == 485 and len(set(t["cluster_id"])) == 485
    grades, counts = np.unique(t["grade"], return_counts=True)
    assert dict(zip(grades, counts, strict=True)) == {"A": 47, "B": 229, "C": 209}
    assert 10**13.66 < t["m500"].min() and t["m500"].max() < 10**14.99
    assert t["r_ein"].unit == u.arcsec and np.median(t["r_ein"]) == pytest.approx(6.5)


def shifted_copy(table, seed):
    """The table with every position moved by 0.2-2 arcsec in a random direction."""
    rng = np.random.default_rng(seed)
    shift = rng.uniform(0.2, 2.0, len(table))
    c = SkyCoord(table["ra"], table["dec"]).directional_offset_by(
        rng.uniform(0, 360, len(table)) * u.deg, shift * u.arcsec
    )
    out = table.copy()
    out["ra"] = c.ra.deg
    out["dec"] = c.dec.deg
    return out, shift


@needs_zhang
def test_crossmatch_recovers_a_shifted_partly_dropped_copy():
    cands = read_zhang2026_candidates(ZHANG)
    known, shift = shifted_copy(cands, seed=7)
    rng = np.random.default_rng(8)
    dropped = np.sort(rng.choice(len(cands), 60, replace=False))
    keep = np.setdiff1d(np.arange(len(cands)), dropped)
    known = known[keep]
    extra = cands[:25].copy()  # known objects far from every candidate
    extra["dec"] = -extra["dec"] * 0.5 - 5.0
    extra["cluster_id"] = -np.arange(1, 26)
    from astropy.table import vstack

    known = vstack([known, extra])
    result = crossmatch(cands, known, radius=3.0)
    assert len(result.matched) == len(keep)
    np.testing.assert_array_equal(result.matched["cluster_id"], result.matched["known_cluster_id"])
    np.testing.assert_array_equal(result.matched["cluster_id"], cands["cluster_id"][keep])
    assert result.matched["separation"].unit == u.arcsec
    np.testing.assert_allclose(result.matched["separation"], shift[keep], atol=1e-6)
    np.testing.assert_array_equal(result.new["cluster_id"], cands["cluster_id"][dropped])
    np.testing.assert_array_equal(
        np.sort(result.missed["cluster_id"]), np.sort(extra["cluster_id"])
    )
    # A radius below the smallest shift matches nothing.
    none = crossmatch(cands, known, radius=0.1 * u.arcsec)
    assert len(none.matched) == 0 and len(none.new) == len(cands)


def test_crossmatch_is_one_to_one():
    cands = Table({"ra": [10.0, 10.0 + 1 / 3600], "dec": [0.0, 0.0]})
    known = Table({"ra": [10.0 + 0.4 / 3600], "dec": [0.0]})
    r = crossmatch(cands, known, radius=2.0)
    assert len(r.matched) == 1 and r.matched["ra"][0] == 10.0 and len(r.new) == 1
    with pytest.raises(ParameterError, match="'radius' parameter of crossmatch"):
        crossmatch(cands, known, radius=-1)
    with pytest.raises(CatalogError, match="no column 'RA'"):
        crossmatch(cands, known, known_columns=("RA", "DEC"))


@needs_zhang
def test_cli_crossmatch(tmp_path, capsys):
    cands = read_zhang2026_candidates(ZHANG)
    known, _ = shifted_copy(cands[:100], seed=1)
    write_table(known, tmp_path / "known.fits")
    code = main(["crossmatch", str(ZHANG), str(tmp_path / "known.fits"), "--radius", "3",
                 "--out", str(tmp_path / "cmp")])  # fmt: skip
    assert code == 0
    assert "100 matched, 385 new, 0 missed" in capsys.readouterr().out
    assert len(read_table(tmp_path / "cmp_new.ecsv")) == 385
    assert main(["crossmatch", str(tmp_path / "nope.csv"), str(ZHANG)]) == 2
    assert "does not exist" in capsys.readouterr().err
