"""Colour composites: colours, orientation, PNG output and galleries."""

import matplotlib.image
import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.survey import gallery, make_rgb, save_png

N = 64


def field(red=(0.05, 0.12, 0.25), blue=(0.2, 0.12, 0.06), seed=0):
    """g, r, z image [nanomaggies]: a red galaxy at the centre, a blue one to the north-west.

    The red galaxy has the colours of an early-type cluster member (faint in g, bright in
    z); the blue one those of a star-forming arc.
    """
    yy, xx = np.mgrid[:N, :N]
    red_blob = np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / (2 * 3.0**2))
    blue_blob = np.exp(-((xx - 50) ** 2 + (yy - 54) ** 2) / (2 * 2.0**2))
    noise = np.random.default_rng(seed).normal(0, 0.002, (3, N, N))
    return (
        np.stack([r * red_blob + b * blue_blob for r, b in zip(red, blue, strict=True)]) + noise
    ).astype(np.float32)


@pytest.mark.parametrize("method", ["legacy", "lupton"])
def test_red_galaxy_is_red_and_blue_galaxy_is_blue(method):
    rgb = make_rgb(field(), method=method).astype(int)
    assert rgb.shape == (N, N, 3) and rgb.dtype == int
    # Display order: row 0 is north, so image row y sits at display row N - 1 - y.
    r, g, b = rgb[N - 1 - 32, 32]
    assert r > g > b and r > 1.5 * b
    r, g, b = rgb[N - 1 - 54, 50]
    assert b > g > r and b > 1.5 * r


def test_legacy_scaling_formula_by_hand():
    img = np.array([0.1, 0.2, 0.3])[:, None, None] * np.ones((3, 2, 2))
    v = np.array([0.1 * 6.0, 0.2 * 3.4, 0.3 * 2.2]) + 0.03  # g, r, z weighted
    intensity = v.mean()
    planes = np.clip(v * np.arcsinh(20 * intensity) / np.sqrt(20) / intensity, 0, 1)
    expected = np.round(planes[::-1] * 255).astype(np.uint8)  # red = z, blue = g
    np.testing.assert_array_equal(make_rgb(img)[0, 0], expected)
    # Band order of the input does not matter once it is named.
    np.testing.assert_array_equal(make_rgb(img[::-1], bands="zrg"), make_rgb(img))


def test_empty_sky_is_black_not_nan():
    rgb = make_rgb(np.zeros((3, 8, 8)), m=0.0)
    assert (rgb == 0).all()


def test_png_round_trip(tmp_path):
    rgb = make_rgb(field())
    path = save_png(rgb, tmp_path / "f.png")
    back = matplotlib.image.imread(path)
    assert back.shape[:2] == (N, N)
    np.testing.assert_array_equal(np.round(back[..., :3] * 255).astype(np.uint8), rgb)
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_gallery_labels_ids_and_grades(tmp_path):
    images = [field(seed=s) for s in range(5)]
    fig = gallery(images, [101, 102, 103, 104, 105], ["A", "B", "C", "A", "B"], ncols=3,
                  path=tmp_path / "g.png")  # fmt: skip
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["101", "A", "102", "B", "103", "C", "104", "A", "105", "B"]
    assert len(fig.axes) == 6 and (tmp_path / "g.png").stat().st_size > 1000
    assert len(gallery(images[:2], ["x", "y"], method="lupton").axes) == 2


def test_bad_input_is_named():
    with pytest.raises(ParameterError, match="'image' parameter of make_rgb.*g, r, z"):
        make_rgb(np.ones((2, 4, 4)))
    bad = field()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        make_rgb(bad)
    with pytest.raises(ParameterError, match="'method' parameter"):
        make_rgb(field(), method="sdss")
    with pytest.raises(ParameterError, match="uint8"):
        save_png(np.zeros((4, 4, 3)), "x.png")
    with pytest.raises(ParameterError, match="same length"):
        gallery([field()], [1, 2])
