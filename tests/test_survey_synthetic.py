"""The synthetic sky behind the CutoutSource interface feeds the same code as real cutouts."""

import numpy as np
import pytest
from astropy.table import Table
from astropy.wcs import WCS

from clusterlens import ParameterError
from clusterlens.confusers import CONFUSER_KINDS
from clusterlens.survey import (
    CutoutError,
    FitsDirectoryCutouts,
    SyntheticCutouts,
    fetch_cutouts,
)

CATALOG = Table(
    {
        "cluster_id": ["c1", "c2", "c3"],
        "ra": [150.0, 150.1, 210.5],
        "dec": [2.0, 2.1, -5.0],
        "z": [0.2, 0.45, 0.7],
        "m500": [2e14, 6e14, 3e14],
    }
)


def test_same_object_same_image_other_object_other_image():
    a = SyntheticCutouts(CATALOG, seed=3)
    img1, hdr = a.get(150.0, 2.0, 65, "grz", cluster_id="c1")
    img2, _ = SyntheticCutouts(CATALOG, seed=3).get(150.0, 2.0, 65, "grz", cluster_id="c1")
    other, _ = a.get(150.1, 2.1, 65, "grz", cluster_id="c2")
    reseeded, _ = SyntheticCutouts(CATALOG, seed=4).get(150.0, 2.0, 65, "grz", cluster_id="c1")
    assert img1.dtype == np.float32 and img1.shape == (3, 65, 65)
    assert np.array_equal(img1, img2)
    assert not np.array_equal(img1, other) and not np.array_equal(img1, reseeded)
    assert hdr["BANDS"] == "grz" and hdr["CLUSTZ"] == pytest.approx(0.2)


def test_catalog_row_sets_the_cluster_and_the_wcs_is_north_up_east_left():
    _, hdr = SyntheticCutouts(CATALOG).get(150.1, 2.1, 65, "grz", cluster_id="c2")
    assert hdr["CLUSTZ"] == pytest.approx(0.45) and hdr["M500"] == pytest.approx(6e14)
    wcs = WCS(hdr)
    ra_c, dec_c = wcs.wcs_pix2world([[32.0, 32.0]], 0)[0]
    assert ra_c == pytest.approx(150.1) and dec_c == pytest.approx(2.1)
    ra_right, dec_up = wcs.wcs_pix2world([[33.0, 33.0]], 0)[0]
    assert ra_right < ra_c and dec_up > dec_c  # +x is west, +y is north
    # an unknown id falls back to the defaults
    _, hdr = SyntheticCutouts(CATALOG, redshift=0.6).get(1.0, 1.0, 33, cluster_id="nope")
    assert hdr["CLUSTZ"] == pytest.approx(0.6)


def test_band_subsets_are_planes_of_the_same_field():
    src = SyntheticCutouts(seed=1)
    grz, _ = src.get(10.0, 10.0, 41, "grz", cluster_id="x")
    rz, hdr = src.get(10.0, 10.0, 41, "rz", cluster_id="x")
    assert np.array_equal(grz[1:], rz) and hdr["BANDS"] == "rz"


def test_bad_input_is_a_clear_error():
    with pytest.raises(CutoutError, match="g, r, z only"):
        SyntheticCutouts().get(10.0, 10.0, 41, "gri")
    with pytest.raises(ParameterError, match="cluster_id, z and m500. Missing: m500"):
        SyntheticCutouts(Table({"cluster_id": ["a"], "z": [0.3]}))
    with pytest.raises(ParameterError, match="'seed'"):
        SyntheticCutouts(seed=-1)
    with pytest.raises(ParameterError, match="'dec'"):
        SyntheticCutouts().get(10.0, 95.0, 41)


def test_bulk_fetch_from_the_synthetic_sky_reads_back_from_disk(tmp_path):
    source = SyntheticCutouts(CATALOG, seed=2)
    summary = fetch_cutouts(CATALOG, source, tmp_path, size=49, workers=2, progress=False)
    assert sorted(summary.fetched) == ["c1", "c2", "c3"] and len(summary.failures) == 0
    again = fetch_cutouts(CATALOG, source, tmp_path, size=49, workers=2, progress=False)
    assert sorted(again.skipped) == ["c1", "c2", "c3"] and not again.fetched
    on_disk, _ = FitsDirectoryCutouts(tmp_path).get(150.1, 2.1, 49, cluster_id="c2")
    direct, _ = source.get(150.1, 2.1, 49, cluster_id="c2")
    assert np.array_equal(on_disk, direct)


def test_field_config_sets_the_content_and_the_header_lists_the_confusers():
    from clusterlens.fields import FieldConfig

    busy = SyntheticCutouts(seed=5, field_config=FieldConfig(confuser_rate=1.0))
    plain = SyntheticCutouts(seed=5, field_config=FieldConfig(confuser_rate=0.0))
    img_b, hdr_b = busy.get(10.0, 10.0, 65, cluster_id="x")
    img_p, hdr_p = plain.get(10.0, 10.0, 65, cluster_id="x")
    kinds = hdr_b["CONFUSE"].split(",")
    assert kinds and all(k in CONFUSER_KINDS for k in kinds)
    assert hdr_p["CONFUSE"] == ""
    assert not np.array_equal(img_b, img_p)
    again, _ = SyntheticCutouts(seed=5, field_config=FieldConfig(confuser_rate=1.0)).get(
        10.0, 10.0, 65, cluster_id="x"
    )
    assert np.array_equal(img_b, again)
    with pytest.raises(ParameterError, match="'field_config'"):
        SyntheticCutouts(field_config={"confuser_rate": 1.0})
