"""``python -m build --wheel`` makes a wheel that holds the app's templates and static files
and imports from a fresh virtual environment.

Needs the ``build`` package (in the ``test`` extra). The project is copied to a temporary
folder first so that the build leaves nothing in the source tree. The wheel is installed,
without dependencies, into a fresh virtual environment that sees the dependencies of the
interpreter running the tests but not the source tree. That interpreter may itself be a
virtual environment, a conda environment or a system Python: ``venv --system-site-packages``
would only see the *base* interpreter's packages (none, from inside a venv), so instead the
new environment gets a ``.pth`` file that adds this interpreter's package folders after its
own, so that the wheel installed there comes first. This interpreter's pip (seen through
that file) does the install, so the environment needs no ensurepip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
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
    (path,) = out.glob(f"{_wheel_prefix()}-*.whl")
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
    assert "clusterlens/demo/templates/report.html.j2" in names  # the demo report's layout
    assert any(n.endswith("entry_points.txt") for n in names)


def _wheel_prefix() -> str:
    """The wheel file's name before the version: the distribution name, normalized."""
    import tomllib

    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    return re.sub(r"[-_.]+", "_", name).lower()


def _parent_package_dirs() -> list[str]:
    """This interpreter's package folders (site-packages, user site, PYTHONPATH...), not the
    source tree: what the fresh environment must see to import the wheel's dependencies."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    dirs += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += [p for p in sys.path if p]
    kept = []
    for d in dirs:
        path = Path(d).resolve()
        if not path.is_dir() or path == ROOT or ROOT in path.parents or str(path) in kept:
            continue
        kept.append(str(path))
    return kept


def _child_env() -> dict[str, str]:
    # PYTHONPATH may name the source tree (as `PYTHONPATH=. python ...` does): the fresh
    # environment must import the installed wheel, so it gets the folders through its .pth.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtual environment that sees this interpreter's dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    env = _child_env()
    # This interpreter's pip, seen through the .pth, installs into the new environment (pip
    # installs where the Python running it lives): no ensurepip, which takes seconds and is
    # missing from some system Pythons (Debian's without python3-venv).
    own_pip = importlib.util.find_spec("pip") is not None
    _run(
        [sys.executable, "-m", "venv", str(venv)] + (["--without-pip"] if own_pip else []),
        env=env,
    )
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env
    ).stdout.strip()
    # addsitedir, not a bare path line: the parent's own .pth files (editable installs,
    # namespace packages) are processed too. Appended after the venv's site-packages.
    # An editable install of this project in the parent (`pip install -e .`, a developer's
    # usual setup) would bring the source tree back through its finder: drop those.
    dirs = _parent_package_dirs()
    line = (
        f"import site, sys; list(map(site.addsitedir, {dirs!r})); "
        "sys.meta_path[:] = [f for f in sys.meta_path "
        "if not str(getattr(f, '__module__', '')).startswith('__editable___clusterlens')]; "
        f"sys.path[:] = [p for p in sys.path if not p.startswith({str(ROOT)!r})]\n"
    )
    (Path(purelib) / "_clusterlens_test_parent.pth").write_text(line)
    return venv, python


def test_the_fresh_venv_sees_the_dependencies_but_not_the_source(venv, tmp_path):
    _, python = venv
    code = "import numpy, astropy, numba, importlib.util as u; print(u.find_spec('clusterlens'))"
    result = _run([str(python), "-c", code], cwd=tmp_path, env=_child_env())
    assert str(ROOT) not in result.stdout


def test_wheel_installs_and_imports_in_a_fresh_venv(wheel, venv, tmp_path):
    venv, python = venv
    env = _child_env()
    # --ignore-installed: where the project is also installed in this interpreter's
    # site-packages (as CI does), pip would otherwise call the requirement satisfied.
    _run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed"]
        + ["--disable-pip-version-check", str(wheel)],
        env=env,
    )
    code = (
        "import clusterlens, clusterlens.app, clusterlens.demo, clusterlens.cli as c;"
        "from importlib import resources;"
        "t = resources.files('clusterlens.app') / 'templates' / 'grade.html';"
        "assert t.is_file();"
        "from clusterlens.demo.report import _environment;"
        "_environment().get_template('report.html.j2');"
        "print(clusterlens.__file__, clusterlens.__version__);"
        "assert c.main(['--version']) == 0"
    )
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    # argparse's --version exits via SystemExit(0)
    assert result.returncode == 0, result.stderr
    location, version = result.stdout.split()[:2]
    assert str(venv) in location and str(ROOT) not in location
    assert version
    # the console script is installed too
    script = venv / ("Scripts" if sys.platform == "win32" else "bin") / "clusterlens"
    assert script.exists()
    help_text = _run([str(script), "--help"], cwd=tmp_path, env=env).stdout
    assert "demo" in help_text and "grade" in help_text
