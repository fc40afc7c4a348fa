"""Where the search loop lives: clusterlens.loop imports without PyTorch, its network
adapters moved from clusterlens.nets (old paths still work, with a warning), no module of
the loop is too long to hold in mind, and the adapters use the project's public API."""

import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from clusterlens.loop import SearchProject

ROOT = Path(__file__).resolve().parents[1]

_WITHOUT_TORCH = textwrap.dedent("""
    import sys, tempfile
    from pathlib import Path

    class NoTorch:
        # a meta-path finder that makes `import torch` fail as on a machine without it
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, NoTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker did not block torch")

    import clusterlens.loop as loop
    from clusterlens.loop import Above, SearchProject, TopK

    work = Path(tempfile.mkdtemp())
    p = SearchProject.create(work / "p.sqlite", {"id": ["a", "b", "c"], "ra": [1.0, 2.0, 3.0]})
    n = p.record_iteration("m", ["a", "b", "c"], [0.9, 0.2, 0.5], TopK(2))
    p.record_decision("a", n, "ann", is_lens=True, grade="A")
    p.record_decision("c", n, "ann", is_lens=False)
    p.apply()
    p.record_iteration("m", ["b", "c"], [0.4, 0.6], Above(0.5))
    assert p.ids("positive") == ["a"] and p.selected() == ["c"]
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("clusterlens.nets"))
    assert not loaded, loaded
    assert "clusterlens.loop.networks" not in sys.modules
    print("ok", len(loop.__all__))
""")


def test_the_loop_imports_and_runs_without_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        (
            "clusterlens.nets.search",
            "clusterlens.loop.networks",
            ["NetworkScorer", "NetworkTrainer", "PretrainedModel", "project_positions"],
        ),
        (
            "clusterlens.nets.simulated_search",
            "clusterlens.loop.simulated_search",
            ["DatasetCutouts", "STRATEGIES", "compare_selection", "survey_positions"],
        ),
    ],
)
def test_the_old_network_glue_paths_still_work_and_warn(old, new, names):
    pytest.importorskip("torch")
    import importlib

    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {new}.{name}") as w:
            value = getattr(old_module, name)
        assert w[0].filename == __file__  # the warning points at the caller's line
        assert value is getattr(new_module, name)
    assert sorted(old_module.__all__) == sorted(names) == sorted(dir(old_module))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        old_module.nothing_here  # noqa: B018


def test_no_loop_module_is_too_long_to_hold_in_mind():
    modules = (ROOT / "clusterlens" / "loop").glob("*.py")
    lengths = {p.name: len(p.read_text().splitlines()) for p in modules}
    parts = {"project.py", "_store.py", "iteration.py", "decisions.py", "catalogue.py"}
    assert parts <= set(lengths)
    assert max(lengths.values()) <= 600, lengths


def test_positions_is_the_public_read_the_adapters_use(tmp_path):
    p = SearchProject.create(
        tmp_path / "p.sqlite", {"id": [3, 1, 2], "ra": [10.0, 20.0, 30.0], "dec": [-1.0, 0.0, 1.0]}
    )
    p.add_objects({"id": ["x"]})  # no position
    t = p.positions()
    assert list(t["id"]) == ["3", "1", "2", "x"]  # insertion order, ids as text
    np.testing.assert_array_equal(t["ra"][:3], [10.0, 20.0, 30.0])
    assert np.isnan(t["ra"][3]) and np.isnan(t["dec"][3])
    p.close()
    pytest.importorskip("torch")
    from clusterlens.loop.networks import project_positions

    # anything with a positions() method will do: the adapters no longer read private SQL
    table = object()
    assert project_positions(types.SimpleNamespace(positions=lambda: table)) is table
