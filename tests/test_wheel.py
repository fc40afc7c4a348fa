"""``python -m build --wheel`` makes a wheel that holds the app's templates and static files
and imports from a fresh virtual environment.

Needs the ``build`` package (in the ``test`` extra). The project is copied to a temporary
folder first so that the build leaves nothing in the source tree. The virtual environment
sees the system's site-packages (numpy, astropy... are not reinstalled) but not the source
tree, and the wheel is installed into it without dependencies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("build")

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "clusterlens", src / "clusterlens", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    # No isolation: build with this environment's setuptools (no download, a second).
    _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check"]
        + ["--outdir", str(out), str(src)]
    )
    (path,) = out.glob("clusterlens-*.whl")
    return path


def test_wheel_holds_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    app = ROOT / "clusterlens" / "app"
    for sub in ("templates", "static"):
        files = [p for p in (app / sub).iterdir() if p.is_file() and p.suffix != ".pyc"]
        assert files
        for f in files:
            assert f"clusterlens/app/{sub}/{f.name}" in names, f.name
    assert "clusterlens/cli/demo.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_wheel_installs_and_imports_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    # --ignore-installed: where the project is also installed in the system's site-packages
    # (as CI does), pip would otherwise call the requirement satisfied and skip the wheel.
    _run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed"]
        + [str(wheel)]
    )
    code = (
        "import clusterlens, clusterlens.app, clusterlens.demo, clusterlens.cli as c;"
        "from importlib import resources;"
        "t = resources.files('clusterlens.app') / 'templates' / 'grade.html';"
        "assert t.is_file();"
        "print(clusterlens.__file__, clusterlens.__version__);"
        "assert c.main(['--version']) == 0"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    # argparse's --version exits via SystemExit(0)
    assert result.returncode == 0, result.stderr
    location, version = result.stdout.split()[:2]
    assert str(venv) in location and str(ROOT) not in location
    assert version
    # the console script is installed too
    script = venv / ("Scripts" if sys.platform == "win32" else "bin") / "clusterlens"
    assert script.exists()
    help_text = _run([str(script), "--help"], cwd=tmp_path).stdout
    assert "demo" in help_text and "grade" in help_text
