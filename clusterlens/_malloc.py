"""glibc malloc settings that keep numpy's large temporaries on the heap.

glibc hands every allocation above its mmap threshold (128 KiB to start with, adapted
upwards as such blocks are freed) to ``mmap`` and returns free heap above its trim threshold
to the system, so a loop that allocates and frees arrays of a few MiB (a 277 x 277 x 3 field
is 1.8 MB) page-faults them in again on every call.  Mock generation measured 10% slower
for that alone in a plain loop and 2x slower when two configurations took turns (their
array sizes kept resetting the adaptive thresholds); the system time of Dask workers started
with ``MALLOC_TRIM_THRESHOLD_=65536`` (Dask's default) was ~46% of their user time.

``MALLOC_ENV`` is what ``clusterlens`` sets in the environment of the worker processes it
starts; :func:`keep_temporaries_on_heap` applies the same two values to the running process
(the ``clusterlens`` command does it at start-up).  Memory is still returned to the system
above 64 MiB of free heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["MALLOC_ENV", "keep_temporaries_on_heap"]

#: glibc tunables for processes that make many large temporary arrays.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": 16 * 2**20, "MALLOC_TRIM_THRESHOLD_": 64 * 2**20}

# mallopt parameter numbers (glibc <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_OPTIONS = {
    "MALLOC_MMAP_THRESHOLD_": _M_MMAP_THRESHOLD,
    "MALLOC_TRIM_THRESHOLD_": _M_TRIM_THRESHOLD,
}


def keep_temporaries_on_heap() -> bool:
    """Raise glibc's thresholds in this process: ``mallopt`` sets the mmap threshold to
    16 MiB and the trim threshold to 64 MiB (``MALLOC_MMAP_THRESHOLD_=16777216``,
    ``MALLOC_TRIM_THRESHOLD_=67108864``, what clusterlens' Dask workers are started with).

    Call it once near the start of a script that simulates or trains in its own process
    (docs/mock.md, "In your own process").  A value the user set in the environment is
    left as it is.  Returns True when both settings are in force (set here or by the
    environment), False where the C library is not glibc (macOS, musl, Windows), which
    have no such thresholds to raise.
    """
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    in_force = True
    for name, value in MALLOC_ENV.items():
        if name in os.environ:
            continue
        in_force &= mallopt(_OPTIONS[name], value) == 1
    return in_force
