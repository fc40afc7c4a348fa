"""Selection strategies of the search loop: TopK, Above, Bald as objects passed to iterate,
what each iteration records, and the deprecated keyword forms of clusterlens 0.1."""

import dataclasses
import re
import sqlite3
import warnings

import numpy as np
import pytest

from clusterlens.errors import ParameterError
from clusterlens.loop import (
    Above,
    Bald,
    SearchProject,
    SelectionStrategy,
    TopK,
    ToyFinder,
    ToySurvey,
    select_bald,
)
from clusterlens.loop._schema import MIGRATIONS, SCHEMA_VERSION

SCORES = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
# two samples per object: objects 2 and 3 disagree (high BALD), 1 is high and agreeing
SAMPLES = np.array([[0.1, 0.9, 0.95, 0.05, 0.3], [0.1, 0.9, 0.05, 0.95, 0.3]])
IDS = ["a", "b", "c", "d", "e"]


@pytest.fixture
def project(tmp_path):
    p = SearchProject.create(tmp_path / "p.sqlite", {"id": IDS})
    yield p
    p.close()


def test_strategies_select_on_plain_arrays():
    assert list(TopK(2).select(SCORES)) == [1, 3]
    assert list(Above(0.5).select(SCORES)) == [1, 3, 2]
    mean = SAMPLES.mean(axis=0)
    np.testing.assert_array_equal(
        Bald(2, mix=0.5).select(mean, SAMPLES), select_bald(SAMPLES, 2, mix=0.5)
    )
    assert Bald(2, mix=0.5).select(mean, SAMPLES)[0] == 1  # the top mean score first
    assert set(Bald(2).select(mean, SAMPLES)) == {2, 3}  # pure BALD: the disagreeing ones
    assert TopK().k == 4000  # the paper's K
    assert repr(Bald(3, mix=0.25)) == "Bald(k=3, mix=0.25)"


def test_strategies_are_checked_and_immutable():
    for bad in (0, 1.5, True, "10"):
        with pytest.raises(ParameterError, match="'k' parameter of TopK"):
            TopK(bad)
    with pytest.raises(ParameterError, match="'k' parameter of Bald"):
        Bald(-1)
    with pytest.raises(ParameterError, match="'mix' parameter of Bald"):
        Bald(3, mix=1.5)
    with pytest.raises(ParameterError, match="'threshold' parameter of Above"):
        Above("high")
    with pytest.raises(ParameterError, match=r"samples of shape \(n_samples, n\)"):
        Bald(2).select(SCORES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TopK(3).k = 4
    assert TopK(np.int64(3)).k == 3 and type(TopK(np.int64(3)).k) is int


def _recorded(project, number):
    it = {i["number"]: i for i in project.iterations()}[number]
    return it["strategy"], it["k"], it["mix"], it["threshold"], project.selected(number)


def test_each_strategy_is_recorded_with_its_parameters(project):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new forms warn about nothing
        n1 = project.record_iteration("m1", IDS, SCORES, TopK(2))
        assert _recorded(project, n1) == ("top_k", 2, None, 0.7, ["b", "d"])
        project.apply(allow_undecided=True)
        n2 = project.record_iteration("m2", IDS, SCORES, Above(0.5))
        assert _recorded(project, n2) == ("above", None, None, 0.5, ["b", "d", "c"])
        project.apply(allow_undecided=True)
        n3 = project.record_iteration("m3", IDS, SAMPLES, selection=Bald(2, mix=0.5))
        assert _recorded(project, n3) == ("bald", 2, 0.5, 0.5, ["b", "c"])
        project.apply(allow_undecided=True)
        n4 = project.record_iteration("m4", IDS, SCORES)  # default: the paper's TopK(4000)
        assert _recorded(project, n4)[:3] == ("top_k", 4000, None)
        assert len(project.selected(n4)) == 5


def test_iterate_takes_a_strategy(tmp_path):
    survey = ToySurvey(n_objects=300, n_lenses=20, seed=2)
    finder = ToyFinder(survey, tmp_path / "m", n_samples=4)
    p = SearchProject.create(tmp_path / "p.sqlite", survey.objects)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        number = p.iterate(finder, finder, Bald(12, mix=0.25))
    assert len(p.selected(number)) == 12
    assert p.iterations()[0]["mix"] == 0.25 and p.iterations()[0]["k"] == 12
    p.close()


@pytest.mark.parametrize(
    ("keywords", "expected", "strategy"),
    [
        ({"k": 2}, TopK(2), "top_k"),
        ({"threshold": 0.5}, Above(0.5), "above"),
        ({"k": None, "threshold": 0.5}, Above(0.5), "above"),  # the old CLI's form
        ({"k": 3, "threshold": 0.5}, Above(0.5), "above"),  # the threshold won, as before
        ({"k": 2, "strategy": "bald", "mix": 0.5}, Bald(2, mix=0.5), "bald"),
        ({"k": 2, "strategy": "top_k", "mix": 0.0}, TopK(2), "top_k"),
    ],
)
def test_old_keywords_still_work_and_warn(tmp_path, keywords, expected, strategy):
    old = SearchProject.create(tmp_path / "old.sqlite", {"id": IDS})
    new = SearchProject.create(tmp_path / "new.sqlite", {"id": IDS})
    scores = SAMPLES if strategy == "bald" else SCORES
    with pytest.warns(DeprecationWarning, match=re.escape(f"instead: {expected!r}")) as w:
        n_old = old.record_iteration("m", IDS, scores, **keywords)
    assert w[0].filename == __file__  # the warning points at the caller's line
    n_new = new.record_iteration("m", IDS, scores, expected)
    assert _recorded(old, n_old) == _recorded(new, n_new)
    assert _recorded(old, n_old)[0] == strategy
    old.close()
    new.close()


def test_iterate_warns_at_the_callers_line_for_old_keywords(tmp_path):
    survey = ToySurvey(n_objects=200, n_lenses=10, seed=4)
    finder = ToyFinder(survey, tmp_path / "m")
    p = SearchProject.create(tmp_path / "p.sqlite", survey.objects)
    with pytest.warns(DeprecationWarning, match=r"iterate\(k=\) is deprecated.*TopK\(k=5\)") as w:
        number = p.iterate(finder, finder, k=5)
    assert w[0].filename == __file__
    assert len(p.selected(number)) == 5
    p.close()


def test_bad_selections_are_refused_before_anything_is_written(project):
    with pytest.raises(ParameterError, match="either a selection strategy or"):
        project.record_iteration("m", IDS, SCORES, TopK(2), k=3)
    with pytest.raises(ParameterError, match="'selection' parameter.*TopK"):
        project.record_iteration("m", IDS, SCORES, "bald")
    with pytest.raises(ParameterError, match="'strategy' parameter"):
        project.record_iteration("m", IDS, SCORES, strategy="random")
    with pytest.raises(ParameterError, match="'mix' applies to strategy 'bald' only"):
        project.record_iteration("m", IDS, SCORES, k=2, mix=0.5)
    with pytest.raises(ParameterError, match="needs k and no threshold"):
        project.record_iteration("m", IDS, SAMPLES, strategy="bald", k=None)
    with pytest.raises(ParameterError, match="samples of shape"):
        project.record_iteration("m", IDS, SCORES, Bald(2))  # one score per object only
    assert project.iterations() == []


class _EveryOther(SelectionStrategy):
    """A user's own strategy: every second object of the pool, in pool order."""

    name = "every_other"

    def __init__(self, offset=0):
        self.offset = offset

    def select(self, scores, samples=None):
        return np.arange(self.offset, len(scores), 2)


def test_a_custom_strategy_and_its_checks(project):
    number = project.record_iteration("m", IDS, SCORES, _EveryOther())
    strategy, k, mix, threshold, selected = _recorded(project, number)
    assert (strategy, k, mix, selected) == ("every_other", None, None, ["a", "c", "e"])
    assert threshold == 0.1  # the lowest selected score
    project.apply(allow_undecided=True)
    with pytest.raises(ParameterError, match=r"distinct indices in \[0, 5\)"):
        project.record_iteration("m", IDS, SCORES, _EveryOther(offset=-1))
    assert project.open_iteration() is None


def test_a_version_2_project_gains_the_mix_column(tmp_path):
    path = tmp_path / "v2.sqlite"
    con = sqlite3.connect(path)
    for v in (1, 2):
        con.executescript(MIGRATIONS[v])
    con.execute("PRAGMA user_version=2")
    con.executemany("INSERT INTO objects (id) VALUES (?)", [(i,) for i in IDS])
    con.execute(
        "INSERT INTO iterations (number, state, strategy, k, threshold, n_scored, n_selected, "
        "created_at, applied_at, n_new) VALUES (1, 'applied', 'bald', 2, 0.5, 5, 2, 0, 1, 0)"
    )
    con.commit()
    con.close()
    p = SearchProject(path)
    assert p.schema_version == SCHEMA_VERSION >= 3
    assert p.iterations()[0]["mix"] is None  # not known for iterations before version 3
    number = p.record_iteration("m", IDS, SAMPLES, Bald(2, mix=0.5))
    assert p.iterations()[-1]["number"] == number and p.iterations()[-1]["mix"] == 0.5
    p.close()


def test_cli_select_builds_the_strategies(tmp_path, capsys):
    from astropy.table import Table

    from clusterlens.cli import main

    path = tmp_path / "p.sqlite"
    SearchProject.create(path, {"id": IDS}).close()
    Table({"id": IDS, "score": SCORES}).write(tmp_path / "scores.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        argv = ["loop", "select", str(path), "--scores", str(tmp_path / "scores.csv")]
        assert main([*argv, "--threshold", "0.5"]) == 0
        p = SearchProject(path)
        assert _recorded(p, 1) == ("above", None, None, 0.5, ["b", "d", "c"])
        p.apply(allow_undecided=True)
        p.close()
        Table({"id": ["a", "e"], "score": [0.2, 0.4]}).write(tmp_path / "s2.csv")
        argv[-1] = str(tmp_path / "s2.csv")
        assert main([*argv, "--k", "1"]) == 0
    assert _recorded(SearchProject(path), 2) == ("top_k", 1, None, 0.4, ["e"])
    assert main([*argv, "--k", "0"]) == 2  # refused with one line
    assert "'k' parameter of TopK" in capsys.readouterr().err
