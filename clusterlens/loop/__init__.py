"""The human-in-the-loop search: project state, grading rules, selection, simulation.

See ``docs/loop.md``. The main entry point is :class:`SearchProject`; what it opens for
inspection is chosen by a selection strategy, :class:`TopK`, :class:`Above` or
:class:`Bald`.

The adapters that plug the real network into the loop, :mod:`clusterlens.loop.networks`
(``NetworkTrainer``, ``NetworkScorer``, ``PretrainedModel``) and
:mod:`clusterlens.loop.simulated_search` (``compare_selection``), need PyTorch and are not
imported here: ``import clusterlens.loop`` works without it.
"""

from clusterlens.loop.grading import (
    GRADE_VALUE,
    GRADES,
    aggregate_grades,
    arc_colour,
    arc_length_width,
    cluster_criterion,
    count_members,
    count_members_in_cutout,
    einstein_radius_from_points,
    grade_from_criteria,
    grade_spread,
)
from clusterlens.loop.project import CATALOG_COLUMNS, Scorer, SearchProject, Trainer
from clusterlens.loop.selection import (
    Above,
    Bald,
    SelectionStrategy,
    TopK,
    bald,
    select_above,
    select_bald,
    select_top_k,
)
from clusterlens.loop.simulate import SimulatedGrader, ToyFinder, ToySurvey, simulate_search

__all__ = [
    "GRADES",
    "GRADE_VALUE",
    "aggregate_grades",
    "arc_colour",
    "arc_length_width",
    "cluster_criterion",
    "count_members",
    "count_members_in_cutout",
    "einstein_radius_from_points",
    "grade_from_criteria",
    "grade_spread",
    "CATALOG_COLUMNS",
    "Scorer",
    "SearchProject",
    "Trainer",
    "SelectionStrategy",
    "TopK",
    "Above",
    "Bald",
    "bald",
    "select_above",
    "select_bald",
    "select_top_k",
    "SimulatedGrader",
    "ToyFinder",
    "ToySurvey",
    "simulate_search",
]
