"""The documentation builds without a warning (``sphinx-build -W -b html docs ...``).

Skipped, with the reason, when the documentation tools (the ``docs`` extra, also in ``test``)
are not installed. Warnings (a broken link or cross-reference, a page missing from the
table of contents, a docstring that does not parse, a gallery example that fails) fail the
build and so this test. The build runs once per session (about 2 minutes of CPU: it
imports the package, runs the gallery and writes some 300 pages); the tests below read it.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

for _module in ("sphinx", "myst_parser", "numpydoc", "sphinx_automodapi", "sphinx_gallery"):
    pytest.importorskip(_module, reason=f"{_module} (the docs extra) is not installed")
pytest.importorskip("furo", reason="furo (the docs extra) is not installed")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q"]
        + ["-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # no CLUSTERLENS_DOCS_INTERSPHINX: the build must not need the network
        env={k: v for k, v in os.environ.items() if "INTERSPHINX" not in k},
    )
    assert result.returncode == 0, result.stderr[-6000:]
    return out / "html"


def test_pages_exist(html):
    for page in ("index", "demo", "paper-to-code", "benchmarks", "tutorials/run-a-search"):
        assert (html / f"{page}.html").is_file(), page
    for page in ("profiles", "nets", "loop", "mock", "survey"):
        assert (html / "api" / f"{page}.html").is_file(), page
    assert (html / "generated/api/clusterlens.profiles.ENFW.html").is_file()


def test_gallery_shows_its_figures(html):
    examples = sorted((DOCS / "examples").glob("plot_*.py"))
    assert examples
    for example in examples:
        page = (html / "generated/gallery" / f"{example.stem}.html").read_text()
        images = re.findall(r'<img[^>]+src="([^"]+sphx_glr_[^"]+\.png)"', page)
        assert images, f"{example.name} shows no figure"
        for src in images:
            assert (html / "generated/gallery" / src).is_file(), src
        assert "sphx-glr-script-out" in page, f"{example.name} shows no output"


def test_api_pages_show_no_raw_roles(html):
    """mkdocstrings showed ":func:`get_profile`" as text; every role must be rendered."""
    raw = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj|math):`")
    offenders = []
    for page in (html / "api").glob("*.html"):
        offenders += [page.name for _ in raw.finditer(re.sub(r"<[^>]+>", "", page.read_text()))]
    for page in (html / "generated/api").glob("*.html"):
        if raw.search(re.sub(r"<[^>]+>", "", page.read_text())):
            offenders.append(page.name)
    assert not offenders, sorted(set(offenders))


def _inventory(html) -> set[str]:
    from sphinx.util.inventory import InventoryFile

    with open(html / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    entries = {
        name: getattr(item, "uri", None) or item[2]  # older Sphinx: a tuple
        for kind, items in inventory.items()
        if kind.startswith("py:")
        for name, item in items.items()
    }

    def private(name):
        return any(part.startswith("_") and not part.endswith("__") for part in name.split("."))

    # A class defined in a private module and documented under its public name is also
    # listed under its defining path (Sphinx's canonical alias): the same page and anchor,
    # not a page of its own.
    public_uris = {uri for name, uri in entries.items() if not private(name)}
    return {name for name, uri in entries.items() if not (private(name) and uri in public_uris)}


#: Old module paths kept as deprecated shims (issue 13 moved the loop's network glue).
_MOVED_MODULES = {"clusterlens.nets.search", "clusterlens.nets.simulated_search"}


def _public_modules():
    import clusterlens

    names = ["clusterlens"] + [
        info.name for info in pkgutil.walk_packages(clusterlens.__path__, "clusterlens.")
    ]
    for name in names:
        parts = name.split(".")
        # the subcommands' modules are plumbing of `clusterlens.cli.main` (docs/cli.md)
        if (
            any(p.startswith("_") for p in parts)
            or parts[:2] == ["clusterlens", "cli"]
            and len(parts) > 2
        ):
            continue
        if name in _MOVED_MODULES:  # deprecated shims: their names are documented where they went
            continue
        module = importlib.import_module(name)
        if hasattr(module, "__all__"):
            yield name, module


def test_every_public_name_is_documented_and_no_private_one(html):
    """Each name of each public module's ``__all__`` has its page, under that module or
    another that re-exports the same object; nothing private is documented."""
    documented = _inventory(html)
    by_attr: dict[str, list[str]] = {}
    for entry in documented:
        by_attr.setdefault(entry.rsplit(".", 1)[-1], []).append(entry)
    missing = []
    for name, module in _public_modules():
        for attr in module.__all__:
            if attr == "__version__":
                continue
            value = getattr(module, attr)
            if not any(_lookup(entry) is value for entry in by_attr.get(attr, []) if entry != attr):
                missing.append(f"{name}.{attr}")
    assert not missing, f"public names without an API page: {missing}"
    private = [
        entry
        for entry in documented
        if any(part.startswith("_") and not part.endswith("__") for part in entry.split("."))
    ]
    assert not private, f"private names documented: {private}"


def _lookup(entry: str):
    """The object a documented module-level name (``package.module.name``) stands for."""
    module_name, attr = entry.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module_name), attr, None)
    except ImportError:  # a method or attribute: module.Class.name
        return None
