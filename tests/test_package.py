import subprocess
import sys

import clusterlens
from clusterlens.cli import main


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
