"""Tests of the search loop: project state, crash safety, concurrency, simulation, export."""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from astropy.table import Table

from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop import (
    CATALOG_COLUMNS,
    Bald,
    SearchProject,
    SimulatedGrader,
    TopK,
    ToyFinder,
    ToySurvey,
    bald,
    select_bald,
    select_top_k,
)
from clusterlens.loop._schema import SCHEMA_VERSION
from tests._data import ZHANG_CATALOG

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def survey():
    return ToySurvey(n_objects=3000, n_lenses=150, seed=1)


def _project(tmp_path, survey, name="p.sqlite"):
    return SearchProject.create(tmp_path / name, survey.objects)


def test_create_open_and_schema(tmp_path, survey):
    p = _project(tmp_path, survey)
    assert p.schema_version == SCHEMA_VERSION
    assert len(p.ids("pool")) == 3000 and p.ids("positive") == []
    assert p._read("PRAGMA journal_mode")[0][0] == "wal"
    assert not (tmp_path / "p.sqlite.tmp").exists()
    with pytest.raises(ClusterlensError, match="exists"):
        SearchProject.create(tmp_path / "p.sqlite", survey.objects)
    with pytest.raises(ClusterlensError, match="No search project"):
        SearchProject(tmp_path / "missing.sqlite")
    # an empty (version 0) database is not a project: it is refused, never migrated
    sqlite3.connect(tmp_path / "old.sqlite").close()
    with pytest.raises(ClusterlensError, match="empty file"):
        SearchProject(tmp_path / "old.sqlite")
    # a newer schema is refused
    con = sqlite3.connect(tmp_path / "new.sqlite")
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(ClusterlensError, match="newer than"):
        SearchProject(tmp_path / "new.sqlite")
    with pytest.raises(ParameterError, match="'id' column"):
        SearchProject.create(tmp_path / "x.sqlite", Table({"ra": [1.0]}))


def _run_loop(project, finder, grader, n_iter, k, **kw):
    rows = []
    for _ in range(n_iter):
        project.iterate(finder, finder, TopK(k), **kw)
        grader.grade(project)
        rows.append(project.apply())
    return rows


def test_simulated_search_beats_single_pass(tmp_path, survey):
    finder = ToyFinder(survey, tmp_path / "models")
    p = _project(tmp_path, survey)
    grader = SimulatedGrader("sim", survey.truth, error_rate=0.0, seed=0)
    test_ids = [str(i) for i in survey.objects["id"][:1000]]
    rows = _run_loop(p, finder, grader, 3, 40, test_set=(test_ids, survey.labels(test_ids)))
    # a single pass with the first model, inspecting as many objects as two iterations did
    ids = [str(i) for i in survey.objects["id"]]
    first = finder.score(p.iterations()[0]["model_path"], ids)
    single_80 = int(survey.labels(ids)[select_top_k(first, 80)].sum())
    assert rows[1]["new"] > 0
    assert rows[1]["cumulative"] > rows[0]["cumulative"]
    assert rows[1]["cumulative"] > single_80  # the loop finds more for the same inspections
    t = p.table()
    assert list(t["cumulative"]) == list(np.cumsum(t["new"]))
    assert all(t["cum_A"] + t["cum_B"] + t["cum_C"] == t["cumulative"])
    assert np.all(t["threshold_tp"] >= t["threshold"])
    assert np.all((t["purity"] >= 0) & (t["purity"] <= 1))
    from clusterlens.metrics import purity_completeness

    for row, it in zip(t, p.iterations(), strict=True):
        s = finder.score(it["model_path"], test_ids)
        expect = purity_completeness(survey.labels(test_ids), s, it["threshold"])
        assert (row["purity"], row["completeness"]) == pytest.approx(expect)
    # found lenses are out of the pool and in training, exactly the true lenses inspected
    found = set(p.ids("positive"))
    assert found.isdisjoint(p.ids("pool"))
    inspected = {o for it in (1, 2, 3) for o in p.selected(it)}
    assert found == {o for o in inspected if o in survey.truth}
    # stopping rule
    assert not p.should_stop(min_new=1, patience=2)
    assert p.should_stop(min_new=10_000, patience=3)
    fig = p.plot_progress()
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_bald_strategy_and_functions(tmp_path, survey):
    p_conf = np.array([[0.99, 0.01, 0.5], [0.98, 0.02, 0.5]])
    p_disagree = np.array([[0.99, 0.01], [0.01, 0.99]])
    assert np.all(bald(p_conf) < 1e-3)  # agreement (even at 0.5) carries no information
    assert np.all(bald(p_disagree) > 0.6)
    assert bald(np.array([[1.0], [0.0]]))[0] == pytest.approx(np.log(2))
    samples = np.vstack([p_conf[:, :2], p_disagree]).T.reshape(2, -1)
    assert set(select_bald(samples, 2)) <= set(range(samples.shape[1]))
    mixed = select_bald(np.array([[0.9, 0.1, 0.9], [0.9, 0.9, 0.1]]), 2, mix=0.5)
    assert mixed[0] == 0 and len(set(mixed)) == 2
    finder = ToyFinder(survey, tmp_path / "m", n_samples=8)
    p = _project(tmp_path, survey)
    p.iterate(finder, finder, Bald(30))
    assert len(p.selected()) == 30
    assert p.iterations()[0]["strategy"] == "bald" and p.iterations()[0]["mix"] == 0.0


def test_decisions_upsert_and_validation(tmp_path, survey):
    finder = ToyFinder(survey, tmp_path / "m")
    p = _project(tmp_path, survey)
    it = p.iterate(finder, finder, TopK(10))
    oid = p.selected()[0]
    p.record_decision(oid, it, "ann", is_lens=True, grade="B", arc_points=[[3, 4], [0, 5]])
    p.record_decision(oid, it, "ann", is_lens=True, grade="a")  # replaces, no duplicate
    d = p.decisions()
    assert len(d) == 1 and d["grade"][0] == "A"
    with pytest.raises(ParameterError, match="not selected"):
        p.record_decision(p.ids("pool")[-1], it, "ann", is_lens=True)
    with pytest.raises(ParameterError, match="non-lens"):
        p.record_decision(oid, it, "bob", is_lens=False, grade="A")
    with pytest.raises(ParameterError, match="'grade' parameter"):
        p.record_decision(oid, it, "bob", is_lens=True, grade="D")
    with pytest.raises(ClusterlensError, match="no decision yet"):
        p.apply()
    with pytest.raises(ClusterlensError, match="still open"):
        p.iterate(finder, finder, TopK(10))
    with pytest.raises(ParameterError, match="'scorer' parameter"):
        p.iterate(finder, object(), TopK(10))
    p.record_decision(p.selected()[1], it, "bob", is_lens=np.int64(0))
    row = p.apply(allow_undecided=True)
    assert row["new"] == 1 and p.ids("positive") == [oid]
    assert len(p.ids("pool")) == 2999  # undecided objects stay in the pool


def test_apply_majority_and_negatives(tmp_path, survey):
    finder = ToyFinder(survey, tmp_path / "m")
    p = _project(tmp_path, survey)
    it = p.iterate(finder, finder, TopK(4))
    a, b, c, d = p.selected()
    votes = {a: (1, 1, 0), b: (1, 0), c: (0, 0, 1), d: (0,)}  # b is a tie: not confirmed
    for oid, vs in votes.items():
        for j, v in enumerate(vs):
            p.record_decision(oid, it, f"g{j}", is_lens=bool(v), grade="B" if v else None)
    row = p.apply(add_negatives=True)
    assert row["new"] == 1 and p.ids("positive") == [a]
    assert set(p.ids("negative")) == {b, c, d}
    assert p.iterations()[0]["n_new_negatives"] == 3
    with pytest.raises(ClusterlensError, match="No iteration is open"):
        p.apply()


def test_csv_import_all_or_nothing(tmp_path, survey):
    finder = ToyFinder(survey, tmp_path / "m")
    p = _project(tmp_path, survey)
    it = p.iterate(finder, finder, TopK(3))
    ids = p.selected()
    good = tmp_path / "good.csv"
    with open(good, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["object_id", "iteration", "grader", "is_lens", "grade", "arc_points"])
        w.writerow([ids[0], it, "ann", "yes", "A", json.dumps([[6, 8]])])
        w.writerow([ids[1], it, "ann", "0", "", ""])
        w.writerow([ids[2], it, "bob", "true", "c", ""])
    assert p.import_decisions_csv(good) == 3
    assert p.import_decisions_csv(good) == 3  # re-import replaces, never duplicates
    assert len(p.decisions()) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"object_id,iteration,grader,is_lens,grade\n{ids[1]},{it},carl,1,B\n"
        f"{ids[2]},{it},carl,maybe,\n"
    )
    with pytest.raises(ParameterError, match="line 3"):
        p.import_decisions_csv(bad)
    assert len(p.decisions()) == 3  # the valid first line was not written either
    p.apply()
    assert p.final_grades()[ids[0]]["r_ein"] == pytest.approx(10.0)


@pytest.mark.parametrize("fmt", ["csv", "fits"])
def test_catalog_export_round_trip(tmp_path, survey, fmt):
    finder = ToyFinder(survey, tmp_path / "m")
    p = _project(tmp_path, survey)
    graders = [
        SimulatedGrader(n, survey.truth, error_rate=0.2, seed=i)
        for i, n in enumerate(["ann", "bob", "cat"])
    ]
    for _ in range(2):
        it = p.iterate(finder, finder, TopK(30))
        for g in graders:
            g.grade(p)
        p.record_decision(
            p.selected()[0],
            it,
            "ann",
            is_lens=True,
            grade="A",
            arc_points=[[3.0, 4.0], [-5.0, 0.0]],
        )
        p.apply()
    out = tmp_path / f"cat.{fmt}"
    written = p.export_catalog(out)
    read = Table.read(out, format="ascii.csv" if fmt == "csv" else "fits")
    read.convert_bytestring_to_unicode()
    header = ZHANG_CATALOG
    if header.exists():
        assert tuple(header.read_text().splitlines()[0].split(",")) == CATALOG_COLUMNS
    assert tuple(read.colnames[: len(CATALOG_COLUMNS)]) == CATALOG_COLUMNS
    assert {"SCORE", "ITERATION", "GRADE_ann", "GRADE_bob", "GRADE_cat"} <= set(read.colnames)
    assert len(read) == len(p.ids("positive")) > 0
    for col in written.colnames:
        back = read[col]
        if hasattr(back, "filled") and back.dtype.kind in "US":
            back = back.filled("")  # empty cells (not graded) read back as masked
        a, b = np.asarray(written[col]), np.asarray(back)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b.astype(float), rtol=1e-12, equal_nan=True)
        else:
            assert [str(x).strip() for x in a] == [str(x).strip() for x in b], col
    grades = p.final_grades()
    for row in read:
        g = grades[str(row["CLUSTER_ID"])]
        assert row["GRADE"] == g["grade"]
    assert np.nanmax(read["R_EIN"]) == pytest.approx(5.0)
    assert np.all((read["M_500"] > 13.5) & (read["M_500"] < 15.1))
    with pytest.raises(ClusterlensError, match="exists"):
        p.export_catalog(out)


def test_concurrent_graders_threads_and_processes(tmp_path, survey):
    finder = ToyFinder(survey, tmp_path / "m")
    p = _project(tmp_path, survey)
    it = p.iterate(finder, finder, TopK(40))
    ids = p.selected()
    p.close()

    def worker(name):
        proj = SearchProject(tmp_path / "p.sqlite")
        for oid in ids:
            proj.record_decision(oid, it, name, is_lens=True, grade="B")
        proj.close()

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    code = textwrap.dedent(f"""
        import sys
        from clusterlens.loop import SearchProject
        p = SearchProject({str(tmp_path / "p.sqlite")!r})
        for oid in {ids!r}:
            p.record_decision(oid, {it}, sys.argv[1], is_lens=False)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, f"p{i}"], env=env) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(pr.wait(timeout=120) == 0 for pr in procs)
    d = SearchProject(tmp_path / "p.sqlite").decisions(it)
    assert len(d) == 7 * 40
    assert len({(r["object_id"], r["grader"]) for r in d}) == 7 * 40


def test_opening_a_project_keeps_this_process_locks(tmp_path):
    """Opening a project in one thread must not drop the locks another thread's connection
    holds: a plain open()/close() of the file cancels the process's POSIX locks, and another
    process then deletes the WAL under the live connection (the corrupt projects of
    concurrent graders)."""
    path = tmp_path / "p.sqlite"
    SearchProject.create(path, _objects()).close()
    first = SearchProject(path)
    first.record_iteration("m", ["a", "b"], [0.9, 0.8], TopK(2))  # a live WAL connection
    SearchProject(path)  # opened again in this process, e.g. by another grader thread
    reader = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('SELECT 1 FROM objects').fetchall(); c.close()"
    )
    subprocess.run([sys.executable, "-c", reader, str(path)], check=True)
    assert Path(str(path) + "-wal").exists()  # the other process knew it was not the last
    assert first.selected() == ["a", "b"]
    first.close()


_DECIDER = """
import itertools, sys
from clusterlens.loop import SearchProject
p = SearchProject(sys.argv[1])
it = p.open_iteration()
ids = p.selected()
for n in itertools.count():  # writes until killed; grader names make every row new
    oid, grader = ids[n % len(ids)], "g%d" % (n // len(ids))
    p.record_decision(oid, it, grader, is_lens=n % 2 == 0, grade="B" if n % 2 == 0 else None)
    print(oid, grader, flush=True)
"""

_LOOPER = """
import sys
from clusterlens.loop import SearchProject, SimulatedGrader, ToyFinder, ToySurvey, TopK
survey = ToySurvey(n_objects=3000, n_lenses=150, seed=1)
finder = ToyFinder(survey, sys.argv[2])
p = SearchProject(sys.argv[1])
grader = SimulatedGrader("sim", survey.truth, error_rate=0.1, seed=int(sys.argv[3]))
print("ready", flush=True)
while True:
    if p.open_iteration() is None:
        p.iterate(finder, finder, TopK(25), test_set=(list(finder.survey.truth)[:20], [1] * 20))
    done = {r["object_id"] for r in p.decisions(p.open_iteration())}
    for oid in p.selected():
        if oid not in done:
            is_lens, grade = grader.decide(oid)
            p.record_decision(oid, p.open_iteration(), "sim", is_lens=is_lens, grade=grade)
    p.apply(add_negatives=int(sys.argv[3]) % 2 == 1)
    print("applied", flush=True)
"""


def _kill_after(cmd, env, *, delay=None, lines=None, after=None):
    """Start ``cmd``, SIGKILL it after ``delay`` seconds or ``lines`` lines of output.

    With ``after``, the delay counts from the first output line that starts with it, so
    a slow start on a busy machine (imports, kernel compilation) does not eat the delay."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    out = []
    if after is not None:
        while True:
            line = proc.stdout.readline()
            out.append(line)
            if not line or line.startswith(after):
                break
    if lines is not None:
        while len(out) < lines:
            out.append(proc.stdout.readline())
    else:
        time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    # Read the rest through the same buffered stream: communicate(timeout=...) reads the raw
    # pipe and would drop lines readline() had already buffered, so acknowledged decisions
    # went missing from the count on a busy machine.
    rest = proc.stdout.read()
    proc.stdout.close()
    assert proc.wait(timeout=60) == -signal.SIGKILL  # it was still working when killed
    return "".join(out) + rest


def test_kill_after_returns_every_line_the_child_wrote():
    """Regression: lines already buffered by readline() were lost by communicate()."""
    # one write() of 24 kB, less than a pipe holds: the parent's first read sees all of it
    child = (
        "import os, time\n"
        "os.write(1, ''.join(f'{i}\\n' for i in range(5000)).encode())\n"
        "time.sleep(60)"
    )
    out = _kill_after([sys.executable, "-c", child], os.environ, lines=1)
    assert out.split() == [str(i) for i in range(5000)]


def _check_consistent(path):
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    assert con.execute("SELECT COUNT(*) FROM iterations WHERE state='open'").fetchone()[0] <= 1
    for number, state, n_new, n_scored, n_sel in con.execute(
        "SELECT number, state, n_new, n_scored, n_selected FROM iterations"
    ).fetchall():
        moved = con.execute(
            "SELECT COUNT(*) FROM objects WHERE added_iteration=? AND status='positive'", (number,)
        ).fetchone()[0]
        assert moved == (n_new if state == "applied" else 0)
        assert (
            con.execute("SELECT COUNT(*) FROM scores WHERE iteration=?", (number,)).fetchone()[0]
            == n_scored
        )
        assert (
            con.execute("SELECT COUNT(*) FROM selections WHERE iteration=?", (number,)).fetchone()[
                0
            ]
            == n_sel
        )
    # in the pool exactly when never moved; every moved lens had a lens majority
    assert (
        con.execute(
            "SELECT COUNT(*) FROM objects WHERE (status='pool') != (added_iteration IS NULL)"
        ).fetchone()[0]
        == 0
    )
    for oid, it in con.execute(
        "SELECT id, added_iteration FROM objects WHERE status='positive'"
    ).fetchall():
        yes, no = con.execute(
            "SELECT SUM(is_lens), SUM(1 - is_lens) FROM decisions WHERE object_id=? AND "
            "iteration=?",
            (oid, it),
        ).fetchone()
        assert yes > no
    con.close()


def test_kill_while_writing_decisions(tmp_path, survey):
    finder = ToyFinder(survey, tmp_path / "m")
    p = _project(tmp_path, survey)
    it = p.iterate(finder, finder, TopK(300))
    p.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = np.random.default_rng(7)
    acked = []
    for trial in range(3):
        out = _kill_after(
            [sys.executable, "-c", _DECIDER, str(tmp_path / "p.sqlite")],
            env,
            lines=int(rng.integers(1, 400)),
        )
        acked += [tuple(line.split()) for line in out.splitlines()]
        q = SearchProject(tmp_path / "p.sqlite")
        got = {(r["object_id"], r["grader"]) for r in q.decisions(it)}
        assert set(acked) <= got  # nothing acknowledged was lost
        assert len(q.decisions(it)) == len(got)  # nothing duplicated
        assert len(got) <= len(set(acked)) + 1 + trial  # at most one unacknowledged per kill
        q.close()
        _check_consistent(tmp_path / "p.sqlite")
    assert len(set(acked)) > 0


def test_kill_during_iterate_and_apply(tmp_path, survey):
    SearchProject.create(tmp_path / "p.sqlite", survey.objects).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = np.random.default_rng(11)
    applied = 0
    for trial in range(5):
        cmd = [
            sys.executable,
            "-c",
            _LOOPER,
            str(tmp_path / "p.sqlite"),
            str(tmp_path / "m"),
            str(trial),
        ]
        if trial == 0:  # one kill just after an acknowledged apply, however busy the machine
            out = _kill_after(cmd, env, lines=2, after="ready")
        else:  # the others at random moments of the loop's work
            out = _kill_after(cmd, env, delay=rng.uniform(1.0, 3.0), after="ready")
        applied += out.count("applied")
        _check_consistent(tmp_path / "p.sqlite")
        q = SearchProject(tmp_path / "p.sqlite")
        n_applied = sum(it["state"] == "applied" for it in q.iterations())
        assert n_applied >= applied  # every acknowledged apply survived
        q.close()
    # the search resumes after the kills
    q = SearchProject(tmp_path / "p.sqlite")
    finder = ToyFinder(survey, tmp_path / "m2")
    if q.open_iteration() is None:
        q.iterate(finder, finder, TopK(10))
    grader = SimulatedGrader("resume", survey.truth)
    grader.grade(q)
    q.apply()
    _check_consistent(tmp_path / "p.sqlite")
    assert applied >= 1


def test_simulate_search_compares_strategies(tmp_path):
    from clusterlens.loop import simulate_search

    survey = ToySurvey(n_objects=1500, n_lenses=80, seed=3)
    top = simulate_search(survey, tmp_path, strategy="top_k", k=20, n_iterations=3)
    neg = simulate_search(survey, tmp_path / "neg", k=20, n_iterations=3, add_negatives=True)
    bal = simulate_search(survey, tmp_path, strategy="bald", k=20, n_iterations=3)
    for t in (top, neg, bal):
        assert list(t["inspected"]) == [20, 40, 60]
        assert np.all(np.diff(t["true_lenses_found"]) >= 0)
        # perfect graders: every confirmed lens is a true lens
        assert list(t["cumulative"]) == list(t["true_lenses_found"])
    # with rejected objects moved out, no object is inspected twice
    assert neg["true_lenses_found"][-1] >= top["true_lenses_found"][-1]


def test_cli_whole_round(tmp_path, survey, capsys):
    from clusterlens.cli import main

    objects = tmp_path / "objects.ecsv"
    survey.objects.write(objects)
    proj = str(tmp_path / "s.sqlite")
    assert main(["loop", "create", proj, "--objects", str(objects)]) == 0
    finder = ToyFinder(survey, tmp_path / "m")
    ids = [str(i) for i in survey.objects["id"]]
    Table({"id": ids, "score": finder.score(finder.train([], [], None), ids)}).write(
        tmp_path / "scores.csv"
    )
    assert main(["loop", "select", proj, "--scores", str(tmp_path / "scores.csv"), "--k", "5"]) == 0
    sel = SearchProject(proj).selected(1)
    lines = ["object_id,iteration,grader,is_lens,grade"]
    lines += [f"{o},1,ann,{int(o in survey.truth)},{survey.truth.get(o, '')}" for o in sel]
    (tmp_path / "dec.csv").write_text("\n".join(lines) + "\n")
    assert main(["loop", "import", proj, str(tmp_path / "dec.csv")]) == 0
    assert main(["loop", "status", proj]) == 0
    assert "open iteration 1: 5 of 5 decided" in capsys.readouterr().out
    assert main(["loop", "apply", proj]) == 0
    assert main(["loop", "export", proj, str(tmp_path / "c.csv")]) == 0
    n_true = sum(o in survey.truth for o in sel)
    assert len(Table.read(tmp_path / "c.csv", format="ascii.csv")) == n_true
    assert main(["loop", "apply", proj]) == 2  # nothing open: a clear error, no traceback
    assert "No iteration is open" in capsys.readouterr().err


# -- issue 15: files that are not projects get one-line errors and stay unchanged -------------


def _objects():
    from astropy.table import Table

    return Table({"id": ["a", "b", "c"], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 1.0, 2.0]})


@pytest.mark.parametrize("kind", ["empty", "text", "foreign", "truncated", "corrupt"])
def test_files_that_are_not_projects_are_refused_unchanged(tmp_path, kind, capsys):
    from clusterlens.cli import main

    path = tmp_path / "p.sqlite"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("id,ra,dec\n1,2,3\n")
    elif kind == "foreign":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        con.commit()
        con.close()
    else:
        SearchProject.create(path, _objects()).close()
        raw = bytearray(path.read_bytes())
        if kind == "truncated":
            raw = raw[: len(raw) // 3]
        else:  # scribble over the schema page
            raw[100:600] = b"\xff" * 500
        path.write_bytes(bytes(raw))
    before = path.read_bytes()
    with pytest.raises(ClusterlensError) as info:
        SearchProject(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert main(["loop", "status", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(path) in err
    assert path.read_bytes() == before  # nothing was written


def test_csv_import_reads_iso_dates_and_unix_seconds(tmp_path):
    path = tmp_path / "p.sqlite"
    p = SearchProject.create(path, _objects())
    p.record_iteration("m", ["a", "b", "c"], [0.9, 0.8, 0.7], TopK(3))
    csv_path = tmp_path / "d.csv"
    csv_path.write_text(
        "object_id,iteration,grader,is_lens,grade,decided_at\n"
        "a,1,Ann,1,A,2026-12-03T17:40:00+00:00\n"
        "b,1,Ann,0,,2026-12-03T18:40:00\n"  # no zone: UTC
        "c,1,Ann,0,,1764783600.5\n"
    )
    assert p.import_decisions_csv(csv_path) == 3
    when = {r["object_id"]: r["decided_at"] for r in p.decisions(1)}
    assert when == {"a": 1796319600.0, "b": 1796323200.0, "c": 1764783600.5}
    csv_path.write_text("object_id,iteration,grader,is_lens,decided_at\na,1,Bob,1,3 Dec\n")
    with pytest.raises(ParameterError, match="line 2.*ISO 8601"):
        p.import_decisions_csv(csv_path)


def test_csv_imports_bom_latin1_and_read_only_projects(tmp_path):
    path = tmp_path / "p.sqlite"
    p = SearchProject.create(path, _objects())
    p.record_iteration("m", ["a", "b"], [0.9, 0.8], TopK(2))
    csv_path = tmp_path / "d.csv"
    csv_path.write_bytes("\ufeffobject_id,iteration,grader,is_lens\na,1,Zoë,1\n".encode())
    assert p.import_decisions_csv(csv_path) == 1  # a byte-order mark is accepted
    csv_path.write_bytes("object_id,iteration,grader,is_lens\nb,1,Zoë,0\n".encode("latin-1"))
    with pytest.raises(ParameterError, match="not UTF-8.*line 2"):
        p.import_decisions_csv(csv_path)
    p.close()
    # a read-only file (root ignores file modes, so SQLite's own read-only mode stands in)
    ro = SearchProject(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    ro._conn = lambda: conn
    csv_path.write_text("object_id,iteration,grader,is_lens\nb,1,Zoe,0\n")
    with pytest.raises(ClusterlensError, match="read-only"):
        ro.import_decisions_csv(csv_path)
    conn.close()
