"""Deprecated: the comparison of selection strategies moved to
:mod:`clusterlens.loop.simulated_search`.

``from clusterlens.nets.simulated_search import compare_selection`` still works and warns
(DeprecationWarning); import from ``clusterlens.loop.simulated_search`` instead.
"""

from __future__ import annotations

import importlib
import warnings

_NEW = "clusterlens.loop.simulated_search"
# the names live in _NEW; __getattr__ hands them out
__all__ = ["DatasetCutouts", "STRATEGIES", "compare_selection", "survey_positions"]  # noqa: F822


def __getattr__(name: str):
    # Warn where the name is used (PEP 562), not at import time inside importlib's frames.
    module = importlib.import_module(_NEW)
    if name.startswith("__") or not hasattr(module, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"{__name__}.{name} moved to {_NEW}.{name}; import it from there "
        "(the old path will be removed).",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
