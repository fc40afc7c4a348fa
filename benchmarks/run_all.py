"""Run every ``bench_*.py`` benchmark of this folder, one after the other.

    python benchmarks/run_all.py            # print the figures
    python benchmarks/run_all.py --check    # also exit 1 if any ratio falls below its floor
    python benchmarks/run_all.py --with-generalisation   # also train and test the finder

The generalisation benchmark trains a network (10-25 minutes on two cores) and has no
floors, so it runs only when asked for (``--with-generalisation``, at its ``--quick`` size
unless ``--size`` follows it).

Extra arguments are passed to every benchmark. Each benchmark times clusterlens and its
reference (lenstronomy, a plain baseline or the machine's measured limit) in the same run and
prints both with their ratio, so figures from different machines are never compared.

glibc's malloc returns large temporary arrays to the system and page-faults them back on
every call unless ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` are raised; that
slows numpy-based references (lenstronomy) by up to 1.5x.  The figures in the docs were taken
with ``MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=67108864`` on an otherwise idle
machine; this script prints which settings and load it ran with.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    with_generalisation = "--with-generalisation" in argv
    argv = [a for a in argv if a != "--with-generalisation"]
    scripts = sorted(here.glob("bench_*.py"))
    if not with_generalisation:
        scripts = [s for s in scripts if s.name != "bench_generalisation.py"]
    failed = []
    malloc = {k: os.environ.get(k, "unset") for k in MALLOC_VARIABLES}
    print("malloc settings:", ", ".join(f"{k}={v}" for k, v in malloc.items()))
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}, cpus: {os.cpu_count()}")
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        args = argv
        if script.name == "bench_generalisation.py":  # its own options only
            args = [a for a in argv if a != "--check"]
            args = args if "--size" in args else ["--quick", *args]
        rc = subprocess.call([sys.executable, str(script), *args])
        print(f"--- {script.name}: exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nbelow floor or failed: {', '.join(failed)}")
        return 1
    print(f"\nall {len(scripts)} benchmarks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
