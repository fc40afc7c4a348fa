"""The documentation site builds without a warning (``mkdocs build --strict``).

Skipped when MkDocs (the ``docs`` extra) is not installed. Warnings (a broken link, a page
missing from the navigation that another page links, an API reference that does not
resolve) fail the build and so this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings")

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "index.html").is_file()
    for page in ("demo", "paper-to-code", "benchmarks", "tutorials/run-a-search"):
        assert (tmp_path / page / "index.html").is_file(), page
