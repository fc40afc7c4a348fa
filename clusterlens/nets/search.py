"""Deprecated: the search loop's network adapters moved to :mod:`clusterlens.loop.networks`.

``from clusterlens.nets.search import NetworkTrainer`` still works and warns
(DeprecationWarning); import from ``clusterlens.loop.networks`` instead.
"""

from clusterlens._moved import moved_names

# the names live in clusterlens.loop.networks; __getattr__ hands them out
__all__ = ["NetworkScorer", "NetworkTrainer", "PretrainedModel", "project_positions"]  # noqa: F822
__getattr__, __dir__ = moved_names(__name__, "clusterlens.loop.networks", __all__)
