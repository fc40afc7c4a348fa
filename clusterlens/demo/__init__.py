"""The paper's whole method, end to end, on the built-in synthetic sky: ``clusterlens demo``.

:func:`run_demo` makes a survey of synthetic cluster fields into a fraction of which
realistic mock lenses are injected (the truth), simulates a training set of mocks on *other*
fields of the same sky (the paper's section 2.2), trains a lens finder on it (section 2.3),
scores the survey, runs the human-in-the-loop search for a few iterations with simulated
graders (section 3.3, Table 2), grades the candidates (section 4.1), cross-matches them with
the truth (section 4.2) and writes one HTML report with the paper's Figures 1, 2, 4, 5, 6
and 7 and Table 2.

Every step writes its outputs atomically and records itself as done in ``OUT/steps/`` only
when all of them exist, so a killed demo resumes at the step it was in; a rerun of a
finished demo with the same options only rewrites nothing and reports. A rerun into the
same folder with other options is refused (a mix of two demos would be meaningless).

The network is a narrow ResNet-18 (1/8 of the channels) trained for a few epochs with a
learning rate suited to that: enough to find the brighter injected arcs on a CPU in
minutes, not the paper's network (full width, 200 epochs, 100,000 mocks).

The package, in the order of a run: :mod:`~clusterlens.demo.config` (the steps and the
options), :mod:`~clusterlens.demo.sky` (the synthetic fields), :mod:`~clusterlens.demo.run`
(the steps themselves) and :mod:`~clusterlens.demo.report` (the HTML page, from the Jinja2
template ``templates/report.html.j2``).
"""

from clusterlens.demo.config import STEPS, DemoConfig, DemoResult
from clusterlens.demo.run import _bar as _bar  # the survey's progress bar (tests reach it here)
from clusterlens.demo.run import run_demo
from clusterlens.demo.sky import FieldPoolSky as FieldPoolSky  # importable here, as before

__all__ = ["DemoConfig", "DemoResult", "run_demo", "STEPS"]
