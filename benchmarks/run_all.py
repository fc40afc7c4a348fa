"""Run every ``bench_*.py`` benchmark of this folder, one after the other.

    python benchmarks/run_all.py            # print the figures
    python benchmarks/run_all.py --check    # also exit 1 if any ratio falls below its floor

Extra arguments are passed to every benchmark. Each benchmark times clusterlens and its
reference (lenstronomy, a plain baseline or the machine's measured limit) in the same run and
prints both with their ratio, so figures from different machines are never compared.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *argv])
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
