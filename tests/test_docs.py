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
