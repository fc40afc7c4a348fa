"""Deprecated: the comparison of selection strategies moved to
:mod:`clusterlens.loop.simulated_search`.

``from clusterlens.nets.simulated_search import compare_selection`` still works and warns
(DeprecationWarning); import from ``clusterlens.loop.simulated_search`` instead.
"""

from clusterlens._moved import moved_names

# the names live in clusterlens.loop.simulated_search; __getattr__ hands them out
__all__ = ["DatasetCutouts", "STRATEGIES", "compare_selection", "survey_positions"]  # noqa: F822
__getattr__, __dir__ = moved_names(__name__, "clusterlens.loop.simulated_search", __all__)
