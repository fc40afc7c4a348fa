"""Tests of the paper's grading rules and the graders' measurement helpers."""

import math

import numpy as np
import pytest
from astropy.table import Table

from clusterlens.errors import ParameterError
from clusterlens.loop import grading as G


def test_grade_table_of_section_4_1():
    assert G.grade_from_criteria(True, "prominent") == "A"
    assert G.grade_from_criteria(True, "visible") == "B"
    assert G.grade_from_criteria(True, "invisible") == "C"
    assert G.grade_from_criteria(False, "prominent") == "B"
    assert G.grade_from_criteria(False, "visible") == "C"
    assert G.grade_from_criteria(False, "invisible") == "C"
    assert G.cluster_criterion(11) and not G.cluster_criterion(10)  # "more than 10"
    with pytest.raises(ParameterError, match="'arc' parameter"):
        G.grade_from_criteria(True, "bright")
    with pytest.raises(ParameterError, match="'n_members'"):
        G.cluster_criterion(-1)


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ("AAAABBC", "A"),  # the paper's example: 4A 2B 1C -> 3A 2B -> A
        ("AABBBCC", "B"),  # 2A 3B 2C -> 3B
        ("ACCCBBB", "B"),  # 1A 3B 3C -> 3B 2C -> B
        ("ACCCCBB", "C"),  # -> 2B 3C -> C
        ("AAAAAAA", "A"),
        ("CCCCCCC", "C"),
        ("A", "A"),
        ("AC", "B"),  # nothing remains: symmetric around B
        ("AACC", "B"),
        ("AB", "B"),  # even number of graders, tie -> lower by default
        ("BC", "C"),
        ("AABB", "B"),
        ("AAABCC", "B"),  # 1A 1B remain -> tie -> lower
        ("abbbccc", "B"),  # case-insensitive; 3B 2C remain
    ],
)
def test_aggregate_grades_edge_table(votes, expected):
    assert G.aggregate_grades(list(votes)) == expected


def test_aggregate_grades_tie_higher_and_order_invariance():
    assert G.aggregate_grades("AB", tie="higher") == "A"
    assert G.aggregate_grades("BC", tie="higher") == "B"
    rng = np.random.default_rng(0)
    for _ in range(200):
        votes = list(rng.choice(list("ABC"), size=rng.integers(1, 9)))
        assert G.aggregate_grades(votes) == G.aggregate_grades(rng.permutation(votes))
        # seven graders, as in the paper: never a tie, so tie-breaking does not matter
        seven = list(rng.choice(list("ABC"), size=7))
        assert G.aggregate_grades(seven, tie="lower") == G.aggregate_grades(seven, tie="higher")
    with pytest.raises(ParameterError, match="must be 'A', 'B' or 'C'"):
        G.aggregate_grades(["A", "D"])
    with pytest.raises(ParameterError, match="empty"):
        G.aggregate_grades([])


def test_grade_spread():
    assert G.grade_spread("AAAABBC") == pytest.approx(
        (np.mean([3, 3, 3, 3, 2, 2, 1]), np.std([3, 3, 3, 3, 2, 2, 1]))
    )
    assert G.grade_spread("BBB") == (2.0, 0.0)
    assert G.grade_spread("AC", ddof=1)[1] == pytest.approx(math.sqrt(2))
    with pytest.raises(ParameterError):
        G.grade_spread("A", ddof=1)


def test_count_members_from_catalog():
    rng = np.random.default_rng(2)
    ra0, dec0, z0 = 150.0, 2.0, 0.4
    n = 400
    ra = ra0 + rng.uniform(-0.02, 0.02, n) / np.cos(np.radians(dec0))
    dec = dec0 + rng.uniform(-0.02, 0.02, n)
    z = rng.uniform(0.1, 1.0, n)
    cat = Table({"ra": ra, "dec": dec, "z": z})
    sep = 3600 * np.hypot((ra - ra0) * np.cos(np.radians(dec0)), dec - dec0)
    expect = np.sum((sep <= 30) & (np.abs(z - z0) <= 0.04 * (1 + z0)))
    assert G.count_members(cat, ra0, dec0, z0, radius_arcsec=30) == expect
    with pytest.raises(ParameterError, match="no column 'zphot'"):
        G.count_members(cat, ra0, dec0, z0, radius_arcsec=30, z_column="zphot")


def _blob(img, x, y, flux, sigma=1.5):
    yy, xx = np.mgrid[: img.shape[-2], : img.shape[-1]]
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return g / g.sum() * flux


def test_count_members_in_cutout_red_sequence():
    rng = np.random.default_rng(5)
    ny = nx = 101
    img = rng.normal(0, 0.01, (3, ny, nx))
    red = np.array([0.3, 1.0, 1.8])  # g, r, z fluxes: r - z = 0.64 mag
    blue = np.array([1.0, 1.0, 0.8])  # r - z = -0.24 mag
    img += red[:, None, None] * _blob(img, 50, 50, 30.0, 2.5)  # the BCG
    pos = rng.permutation([(x, y) for x in range(10, 95, 12) for y in range(10, 95, 12)])
    pos = [p for p in pos if np.hypot(p[0] - 50, p[1] - 50) > 12]
    for i, (x, y) in enumerate(pos[:20]):
        sed = red if i < 12 else blue
        img += sed[:, None, None] * _blob(img, x, y, rng.uniform(3, 6))
    n, table = G.count_members_in_cutout(img, colour_window=0.2)
    assert n == 13  # 12 red members + the BCG
    assert len(table) == 21
    assert G.cluster_criterion(n)
    n_given, _ = G.count_members_in_cutout(img, reference_colour=-0.24, colour_window=0.2)
    assert n_given == 8


def _annular_sector(radius, width, phi, n=201, scale=0.262):
    c = n // 2
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(xx - c, yy - c)
    ang = np.arctan2(yy - c, xx - c)
    return (np.abs(r - radius) <= width / 2) & (np.abs(ang) <= phi / 2)


@pytest.mark.parametrize(
    ("radius", "width", "phi"), [(60, 4, 1.5), (40, 6, 2.5), (70, 3, 0.6), (40, 10, 1.2)]
)
def test_arc_length_width_on_annular_sectors(radius, width, phi):
    mask = _annular_sector(radius, width, phi)
    length, w, ratio = G.arc_length_width(mask, pixel_scale=0.262)
    true_len = radius * phi
    assert length / 0.262 == pytest.approx(true_len, rel=0.05)
    assert w / 0.262 == pytest.approx(width, rel=0.08)
    assert ratio == pytest.approx(true_len / width, rel=0.1)
    with pytest.raises(ParameterError, match="at least one True"):
        G.arc_length_width(np.zeros((5, 5), bool))


def test_arc_colour_and_einstein_radius():
    img = np.zeros((3, 20, 20))
    mask = np.zeros((20, 20), bool)
    mask[5:7, 3:15] = True
    img[0][mask], img[1][mask] = 2.0, 1.0
    assert G.arc_colour(img, mask) == pytest.approx(-2.5 * np.log10(2.0))
    assert math.isnan(G.arc_colour(np.zeros((3, 20, 20)), mask))
    pts = [(10 * np.cos(t), 10 * np.sin(t)) for t in np.linspace(0, 1, 7)]
    assert G.einstein_radius_from_points(pts) == pytest.approx(10.0)
    assert G.einstein_radius_from_points([(3, 4)], bcg=(0, 8)) == pytest.approx(5.0)
    with pytest.raises(ParameterError, match=r"shape \(n, 2\)"):
        G.einstein_radius_from_points([[1, 2, 3]])
