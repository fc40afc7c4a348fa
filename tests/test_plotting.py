"""Tests of clusterlens.plotting and of the first example."""

import importlib.util
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from clusterlens.errors import ParameterError  # noqa: E402
from clusterlens.lensing import critical_curves  # noqa: E402
from clusterlens.plotting import plot_lens_maps  # noqa: E402
from clusterlens.profiles import SIE, SIEPopulation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _lens():
    members = SIEPopulation([0.5, 0.4], [0.8, 0.9], [10.0, 60.0], [12.0, -9.0], [3.0, 8.0])
    return SIE(6.0, 0.7, 30.0) + members, np.column_stack([members.x0, members.y0])


def test_plot_lens_maps_draws_every_layer(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show was called"))
    lens, positions = _lens()
    curves = critical_curves(lens, n_pix=160, pixel_scale=0.25)
    fig, ax = plot_lens_maps(
        lens, n_pix=160, pixel_scale=0.25, critical=curves, members=positions, source=(0.3, 0.1)
    )
    assert fig is ax.figure
    colors = [to_rgba(line.get_color()) for line in ax.lines]
    assert colors.count(to_rgba("red")) == len(curves.all) >= 3
    assert colors.count(to_rgba("lime")) == len(curves.all)
    members = [line for line in ax.lines if line.get_color() == "orange"]
    assert len(members) == 1 and np.allclose(members[0].get_xydata(), positions)
    source = [line for line in ax.lines if line.get_color() == "cyan"]
    assert np.allclose(source[0].get_xydata(), [[0.3, 0.1]])
    image = ax.images[0]
    assert image.origin == "lower" and image.norm.__class__.__name__ == "LogNorm"
    assert ax.get_xlim() == (-20.0, 20.0)
    plt.close(fig)


def test_plot_lens_maps_draws_into_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    out_fig, out_ax = plot_lens_maps(SIE(3.0, 0.8, 0.0), n_pix=64, pixel_scale=0.25, ax=right)
    assert out_fig is fig and out_ax is right and right.lines and not left.lines
    plt.close(fig)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(members=np.zeros((3, 3))), "'members' parameter of plot_lens_maps"),
        (dict(source=[np.nan, 1.0]), "'source' parameter of plot_lens_maps"),
        (dict(critical=[np.zeros((4, 2))]), "'critical' parameter of plot_lens_maps"),
        (dict(pixel_scale=0.0), "'pixel_scale' parameter of plot_lens_maps"),
    ],
)
def test_plot_lens_maps_bad_input(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        plot_lens_maps(SIE(3.0, 0.8, 0.0), n_pix=32, **kwargs)


def test_first_example_runs_and_saves_its_figure(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "build_a_cluster_lens", ROOT / "examples" / "build_a_cluster_lens.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--out", str(tmp_path / "figs")]) == 0
    png = tmp_path / "figs" / "cluster_lens_critical_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in png.parent.iterdir()] == [png.name]  # no partial file left
    out = capsys.readouterr().out
    theta_e = float(out.split("effective Einstein radius for z_s = 2.0: ")[1].split()[0])
    assert 5.0 < theta_e < 50.0
    plt.close("all")
