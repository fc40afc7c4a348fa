"""The tutorials' code runs: every ```python block of a tutorial page, in order, in one
namespace, in a temporary working directory, so the documentation cannot rot.

Blocks fenced as ```py are shown but not run (for code that needs a GPU or a cluster)."""

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__tutorial__"}
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no python code block"
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)  # noqa: S102
    os.chdir(tmp_path)


IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")
TUTORIAL_IMAGES = DOCS / "images" / "tutorials"


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_images_exist(page):
    """Every figure a tutorial shows is in the docs (made by docs/tutorials/make_figures.py)."""
    missing = [ref for ref in IMAGE.findall(page.read_text()) if not (page.parent / ref).is_file()]
    assert not missing, f"{page.name} shows images that do not exist: {missing}"


def test_every_tutorial_image_is_shown():
    """No PNG in docs/images/tutorials is left over from a figure no page shows any more."""
    shown = {
        (page.parent / ref).resolve()
        for page in TUTORIALS
        for ref in IMAGE.findall(page.read_text())
    }
    unused = [p.name for p in sorted(TUTORIAL_IMAGES.glob("*.png")) if p.resolve() not in shown]
    assert not unused, f"images no tutorial shows: {unused}"
