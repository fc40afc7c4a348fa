"""Progress reports: a tqdm bar on a terminal, plain timed lines in a file or a log."""

from __future__ import annotations

import io

import pytest

from clusterlens._progress import LogProgress, progress


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_file_gets_plain_lines_every_interval_without_carriage_returns():
    out, clock = io.StringIO(), _Clock()
    bar = LogProgress(total=100, desc="simulate", unit="img", file=out, interval=30, clock=clock)
    for _ in range(100):
        clock.t += 1.0  # one image a second: a line at 30, 60 and 90 s, then the last one
        bar.update(1)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 4, lines
    assert lines[0] == "simulate: 30/100 img (30%), 0:30 elapsed, 1 img/s, ~1:10 left"
    assert lines[-1] == "simulate: 100/100 img (100%), 1:40 elapsed, 1 img/s"


def test_progress_picks_plain_lines_for_a_file_and_tqdm_for_a_terminal(monkeypatch):
    from tqdm.std import tqdm

    import clusterlens._progress as progress_module

    # a stopped clock: the line's "0:00 elapsed" does not depend on how fast the machine is
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: 1000.0)

    out = io.StringIO()
    with progress(total=5, desc="scoring", unit="chunk", file=out) as bar:
        assert isinstance(bar, LogProgress)
        bar.update(5)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("scoring: 5/5 chunk (100%), 0:00 elapsed")
    term = _Terminal()
    with progress(total=5, desc="scoring", file=term) as bar:
        assert isinstance(bar, tqdm)
        bar.update(5)
    assert "\r" in term.getvalue()  # tqdm's redraws, as on a screen


def test_resumed_runs_count_only_new_steps_in_the_rate_and_show_postfix():
    out, clock = io.StringIO(), _Clock()
    bar = LogProgress(total=10, initial=6, unit="cutout", file=out, interval=5, clock=clock)
    clock.t = 4.0
    bar.update(2)  # before the interval: nothing yet
    assert out.getvalue() == ""
    bar.set_postfix(failed=1, refresh=False)
    clock.t = 8.0
    bar.update(2)
    assert out.getvalue() == "10/10 cutout (100%), 0:08 elapsed, 0.5 cutout/s, failed=1\n"
    bar.close()  # nothing new since that line: no repeat
    assert out.getvalue().count("\n") == 1


@pytest.mark.parametrize("kwargs", [{"disable": True}, {"leave": False}])
def test_disabled_or_transient_reports_print_no_final_line(kwargs):
    out = io.StringIO()
    with progress(total=3, file=out, **kwargs) as bar:
        bar.update(3)
        bar.set_postfix(loss="0.1")
    assert out.getvalue() == ""


def test_the_demo_survey_bar_writes_lines_to_a_log(capsys):
    from clusterlens import demo

    bar = demo._bar(True, 3, "survey")
    assert isinstance(bar, LogProgress)  # pytest's captured stderr is not a terminal
    bar.interval = 0
    for _ in range(3):
        bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines()[-1].startswith("survey: 3/3 field (100%)")
