"""The ``clusterlens`` command: every stage present, help with examples, clean user errors."""

from __future__ import annotations

import pytest
from astropy.table import Table

from clusterlens.cli import build_parser, main

STAGES = ("simulate", "fetch", "train", "score", "loop", "inspect", "grade", "crossmatch", "demo")


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_stage_has_a_subcommand_with_an_example():
    subs = _subparsers()
    assert set(STAGES) <= set(subs)
    for name in STAGES:
        description = subs[name].description
        assert f"clusterlens {name} " in description, name  # an example command line
        assert len(description.splitlines()) >= 4, name  # and some explanation


@pytest.mark.parametrize("name", STAGES)
def test_help_exits_cleanly(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: clusterlens" in capsys.readouterr().out


def test_common_options_are_spelled_alike():
    subs = _subparsers()
    options = {name: {s for a in subs[name]._actions for s in a.option_strings} for name in subs}
    for name in ("simulate", "fetch", "train", "score", "demo"):
        assert "--out" in options[name], name
    for name in ("simulate", "train", "demo"):
        assert "--seed" in options[name], name
    for name in ("simulate", "fetch", "train", "score", "demo"):
        assert "--workers" in options[name], name
    for name in ("train", "score", "demo"):
        assert "--threads" in options[name], name


def _assert_user_error(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"clusterlens {argv[0]}: error:"), err
    for w in words:
        assert w in lines[0], err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["grade", "nowhere.sqlite"], ["No project file"]),
        (["crossmatch", "missing.csv", "other.csv"], ["missing.csv"]),
        (["train", "--data", "missing_dataset", "--out", "run"], []),
        (["score", "--model", "missing.pt", "--cutouts", ".", "--out", "s.csv"], ["missing.pt"]),
        (["simulate", "--n", "0", "--out", "x", "--workers", "0"], ["n_images"]),
        (["demo", "--out", "d", "--cutouts", "nowhere", "--catalog", "c", "--known", "k"], []),
        (["demo", "--out", "d", "--clusters", "2"], ["n_clusters"]),
        (["demo", "--out", "d", "--widths", "5"], ["--widths"]),
        (["loop", "status", "nowhere.sqlite"], []),
    ],
)
def test_user_errors_are_one_line_exit_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _assert_user_error(capsys, argv, *words)


def test_bad_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grade", "p.sqlite", "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.fixture
def project(tmp_path):
    from clusterlens.loop import SearchProject, TopK

    objects = Table({"id": ["a", "b", "c", "d"], "ra": [1.0, 2, 3, 4], "dec": [0.0, 0, 0, 0]})
    p = SearchProject.create(tmp_path / "s.sqlite", objects)
    p.record_iteration("model.pt", ["a", "b", "c", "d"], [0.9, 0.8, 0.2, 0.1], TopK(2))
    p.record_decision("a", 1, "ann", is_lens=True, grade="A")
    p.record_decision("b", 1, "ann", is_lens=False)
    p.apply()
    p.close()
    return tmp_path / "s.sqlite"


def test_grade_imports_aggregates_and_exports(project, tmp_path, capsys):
    csv = tmp_path / "bob.csv"
    csv.write_text(
        "object_id,iteration,grader,is_lens,grade\na,1,bob,1,C\na,1,cai,1,A\na,1,dan,1,B\n"
    )
    out = tmp_path / "cands.csv"
    assert main(["grade", str(project), "--import", str(csv), "--final", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "imported 3 decisions" in text
    # A A C B: one A cancels the C, then A against B is a tie, which goes to the lower grade
    assert "1 candidates: 0 A, 1 B, 0 C, 0 ungraded; graders: ann, bob, cai, dan" in text
    table = Table.read(out, format="ascii.csv")
    assert list(table["CLUSTER_ID"]) == ["a"] and table["N_GRADERS"][0] == 4
    # an existing output is not replaced without --overwrite
    _assert_user_error(capsys, ["grade", str(project), "--out", str(out)], "--overwrite")


def test_grade_rejects_a_bad_csv_and_writes_nothing(project, tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("object_id,iteration,grader,is_lens,grade\na,1,eve,1,A\nb,1,eve,maybe,\n")
    _assert_user_error(capsys, ["grade", str(project), "--import", str(csv)])
    assert main(["grade", str(project)]) == 0
    assert "graders: ann" in capsys.readouterr().out


# Heavy libraries that `clusterlens --help` must not import: seconds each (numba's import
# alone is ~1 s), while help should answer at once. Subcommands import them inside run().
HEAVY = ("numba", "torch", "astropy", "scipy", "matplotlib", "dask", "flask", "skimage")


def test_help_imports_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "import clusterlens.cli as cli\n"
        "cli.build_parser()\n"
        f"for argv in [['--help']] + [[n, '--help'] for n in {STAGES!r}]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            cli.main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = set(eval(result.stdout))
    assert "clusterlens" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_fetch_help_constants_match_the_legacy_module():
    from clusterlens.cli import fetch
    from clusterlens.survey import legacy

    assert fetch.DEFAULT_BASE_URL == legacy.DEFAULT_BASE_URL
    assert fetch.LAYERS == legacy.LAYERS


def _load_kernel_module(path, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compile_notice_is_said_once_and_not_when_the_kernel_is_cached(tmp_path):
    import io

    from clusterlens.cli._compile_notice import MESSAGE, compile_notice

    path = tmp_path / "kern.py"
    path.write_text(
        "from numba import njit\n\n\n@njit(cache=True)\ndef add_one(x):\n    return x + 1\n"
    )
    first = io.StringIO()
    with compile_notice(first, module_prefix="kernpkg"):
        module = _load_kernel_module(path, "kernpkg.first")
        assert module.add_one(1) == 2 and module.add_one(2.5) == 3.5  # two compilations
    assert first.getvalue() == MESSAGE + "\n"
    # a fresh dispatcher of the same source loads both signatures from the on-disk cache
    again = io.StringIO()
    with compile_notice(again, module_prefix="kernpkg"):
        module = _load_kernel_module(path, "kernpkg.again")
        assert module.add_one(1) == 2 and module.add_one(2.5) == 3.5
    assert again.getvalue() == ""
    # kernels of other packages are not announced (compiled, not cached)
    other_path = tmp_path / "other.py"
    other_path.write_text(path.read_text().replace("cache=True", "cache=False"))
    other = io.StringIO()
    with compile_notice(other, module_prefix="kernpkg"):
        module = _load_kernel_module(other_path, "otherpkg.mod")
        assert module.add_one(3) == 4
    assert other.getvalue() == ""


def test_the_command_announces_compilation_on_stderr(capsys, monkeypatch):
    import clusterlens.cli.grade as grade
    from clusterlens.cli._compile_notice import MESSAGE

    def compile_a_kernel(args):
        from numba import njit

        def twice(x):
            return 2 * x

        twice.__module__ = "clusterlens.cli.grade"  # as if one of the library's kernels
        assert njit(twice)(2) == 4
        return 0

    monkeypatch.setattr(grade, "run", compile_a_kernel)
    assert main(["grade", "whatever.sqlite"]) == 0
    assert capsys.readouterr().err == MESSAGE + "\n"
