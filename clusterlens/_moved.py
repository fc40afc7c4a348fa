"""Deprecated module paths that re-export names moved elsewhere (private).

An old module keeps working through :func:`moved_names`, which imports the new module only
when a name is used and warns there; it imports nothing of clusterlens itself, so a shim
adds no import arrow (e.g. the loop's network adapters, in :mod:`clusterlens.nets` until
clusterlens 0.1, now in :mod:`clusterlens.loop`).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence

__all__ = ["moved_names"]


def moved_names(old: str, new: str, names: Sequence[str]) -> tuple[Callable, Callable]:
    """The ``__getattr__`` and ``__dir__`` (PEP 562) of a module ``old`` whose ``names`` now
    live in module ``new``: each access returns ``new``'s object with a DeprecationWarning
    that points at the caller's line (not at import time inside importlib's frames)."""

    def __getattr__(name: str):
        module = importlib.import_module(new)
        if name.startswith("__") or not hasattr(module, name):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}; import it from there "
            "(the old path will be removed).",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
