"""Say once, on stderr, that numba is compiling the kernels (7-10 s on a first run).

The kernels are compiled on first use and cached on disk (``cache=True``), so only a first
run, or the first after an upgrade, pays for it; without a word the command just seems to
hang. numba reports each real compilation as a ``numba:compile`` event, and a kernel loaded
from the cache raises none, so listening to that event says exactly when compiling happens.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TextIO

__all__ = ["MESSAGE", "compile_notice"]

MESSAGE = "clusterlens: compiling kernels (first run only; cached for later runs)..."


@contextlib.contextmanager
def compile_notice(stream: TextIO | None = None, module_prefix: str = "clusterlens"):
    """Within this context, print :data:`MESSAGE` once when numba starts compiling a kernel
    of a module whose name starts with ``module_prefix``; silent when every kernel comes
    from the cache. ``stream`` defaults to ``sys.stderr`` (looked up when printing)."""
    from numba.core import event

    class _Notice(event.Listener):
        said = False

        def on_start(self, ev):
            if self.said:
                return
            dispatcher = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if module == module_prefix or module.startswith(module_prefix + "."):
                self.said = True
                out = stream if stream is not None else sys.stderr
                print(MESSAGE, file=out, flush=True)

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", _Notice()):
        yield
