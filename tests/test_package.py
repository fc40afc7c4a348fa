import re
import subprocess
import sys
from pathlib import Path

import pytest

import clusterlens
from clusterlens.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_a_string():
    assert isinstance(clusterlens.__version__, str) and clusterlens.__version__[0].isdigit()


def test_cli_help_lists_itself(capsys):
    assert main([]) == 1
    assert "clusterlens" in capsys.readouterr().out


def test_python_dash_m_runs_the_command():
    out = subprocess.run(
        [sys.executable, "-m", "clusterlens", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and clusterlens.__version__ in out.stdout


def test_python_dash_m_cli_runs_the_command():
    out = subprocess.run(
        [sys.executable, "-m", "clusterlens.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and clusterlens.__version__ in out.stdout


def _readme_commands() -> set[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return {c.strip() for b in blocks for line in b.splitlines() for c in line.split("&&")}


def _ci_commands() -> list[str]:
    """.ci/run's pip and pytest commands as a user types them: `python3 -m pip install -q`
    is `pip install`, and the environment settings in front are CI's, not the command's."""
    text = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        words = [w for w in line.split() if not re.fullmatch(r"[A-Z_]+=\S*", w)]
        if words[:3] == ["python3", "-m", "pip"]:
            words = ["pip"] + [w for w in words[3:] if w != "-q"]
        elif words[:3] == ["python3", "-m", "pytest"]:
            words = ["python"] + words[1:]
        else:
            continue
        commands.append(" ".join(words))
    return commands


def test_ci_runs_the_readme_commands():
    readme = _readme_commands()
    ci = _ci_commands()
    assert any("torch" in c for c in ci) and "python -m pytest -q" in ci
    for command in ci:
        assert command in readme, command
    # the install line takes the CPU build from PyTorch's index, wherever it runs
    (torch,) = [c for c in ci if "torch" in c]
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch


def test_the_distribution_name_is_not_the_unrelated_pypi_package():
    import tomllib

    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    # "clusterlens" on PyPI is another project that also imports as `clusterlens`
    assert name != "clusterlens" and name.startswith("clusterlens")
    assert f"`{name}`" in (ROOT / "README.md").read_text()


def test_citation_file_names_the_paper_and_this_version():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == clusterlens.__version__
    paper = cff["preferred-citation"]
    assert "Galaxy Cluster-Scale Strong Lenses" in paper["title"]
    assert [a["family-names"] for a in paper["authors"]][:2] == ["Zhang", "Li"]
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
