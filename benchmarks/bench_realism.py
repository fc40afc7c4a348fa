"""The realism report of a small dataset, for the default (realistic) and the ``paper`` preset.

For each preset the script writes a dataset of ``--n`` images (half lenses) with
:func:`clusterlens.mock.simulate_dataset` in this process (no Dask, one numba thread) and
times it (numba's compile or cache load is paid by ``--warm`` images made first, not timed),
writes its realism report (:func:`clusterlens.mock.report.realism_report`) and prints the two
summaries side by side: median (16-84%) of every quantity for each preset, with the paper's
Table 1 figure and the 485 published candidates beside them, then mocks per second (lenses
alone, negatives alone, and all images written, wall time).

Run: ``PYTHONPATH=. python benchmarks/bench_realism.py [--n 60] [--out DIR]
[--candidates zhang2026_cluster_lens_candidates.csv] [--check]``; ``--check`` exits 1 unless
both reports are complete and every mock median lies inside the paper's range where it gives
one.  The reports stay in ``DIR/<preset>/report/`` with ``--out`` (default: a temporary
folder, removed at the end).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from clusterlens.mock import preset_config, simulate_dataset  # noqa: E402
from clusterlens.mock.report import format_range, format_stats, realism_report  # noqa: E402

PRESETS = ("realistic", "paper")
_CANDIDATES = Path(__file__).resolve().parents[2] / "shared" / "data"


def _default_candidates():
    for p in (_CANDIDATES, Path("/work/shared/data")):
        f = p / "zhang2026_cluster_lens_candidates.csv"
        if f.is_file():
            return f
    return None


def _timed_make_image(times: dict):
    """``make_image`` of clusterlens.mock.dataset, timing lenses and negatives apart."""
    import clusterlens.mock.dataset as dsmod

    real = dsmod.make_image

    def timed(index, **kw):
        t = time.perf_counter()
        out = real(index, **kw)
        times.setdefault(out[1], []).append(time.perf_counter() - t)
        return out

    return dsmod, real, timed


def run_preset(name: str, root: Path, n: int, warm: int, seed: int, candidates) -> dict:
    config = preset_config(name)
    if warm:  # compile / load the numba cache before timing
        simulate_dataset(root / f"{name}-warm", warm, config, seed=seed + 1, workers=0,
                         progress=False, overwrite=True)  # fmt: skip
    times: dict = {}
    dsmod, real, timed = _timed_make_image(times)
    dsmod.make_image = timed  # workers=0 runs in this process: the wrapper sees every image
    try:
        t0 = time.perf_counter()
        ds = simulate_dataset(root / name, n, config, seed=seed, workers=0, progress=False,
                              overwrite=True)  # fmt: skip
        wall = time.perf_counter() - t0
    finally:
        dsmod.make_image = real
    t1 = time.perf_counter()
    report = realism_report(ds, candidates=candidates)
    return {
        "report": report,
        "wall": wall,
        "report_wall": time.perf_counter() - t1,
        "n": n,
        "lens_s": times.get(1, []),
        "negative_s": times.get(0, []),
    }


def side_by_side(results: dict) -> str:
    names = list(results)
    first = results[names[0]]["report"].summary
    head = "| quantity | " + " | ".join(f"{n}: median (16-84%)" for n in names)
    head += " | paper | 485 candidates |"
    lines = [head, "|---" * (len(names) + 3) + "|"]
    for q, row in first.items():
        cells = [format_stats(results[n]["report"].summary[q]["mocks"]) for n in names]
        cand = format_stats(row["candidates"])
        if row["candidates"] and row["candidates_column"] != q:
            cand += f" [{row['candidates_column']}]"
        lines.append(
            f"| {q} | " + " | ".join(cells) + f" | {format_range(row['paper'])} | {cand} |"
        )
    return "\n".join(lines)


def _check(results: dict) -> list[str]:
    from clusterlens.mock.report import report_is_complete

    problems = []
    for name, r in results.items():
        report = r["report"]
        if not report_is_complete(report.path):
            problems.append(f"{name}: the report at {report.path} is not complete")
        for q, row in report.summary.items():
            paper, mock = row["paper"], row["mocks"]
            if not paper or not mock:
                continue
            lo = -float("inf") if paper["low"] is None else paper["low"]
            hi = float("inf") if paper["high"] is None else paper["high"]
            if not lo <= mock["median"] <= hi:
                problems.append(f"{name}: {q} median {mock['median']:.3g} outside {lo}-{hi}")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="images per preset (half lenses)")
    parser.add_argument("--warm", type=int, default=2, help="untimed images made first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="keep the datasets here")
    parser.add_argument("--candidates", type=Path, default=None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless both reports are complete and every mock median lies in the "
        "paper's range where it gives one",
    )
    args, _ = parser.parse_known_args(argv)  # run_all.py passes the same options to all
    candidates = args.candidates or _default_candidates()
    tmp = None
    root = args.out
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_realism_")
        root = Path(tmp.name)
    try:
        results = {
            name: run_preset(name, root, args.n, args.warm, args.seed, candidates)
            for name in PRESETS
        }
        print(f"{args.n} images per preset (half lenses), seed {args.seed}; candidates: "
              f"{candidates or 'built-in summary'}\n")  # fmt: skip
        print(side_by_side(results))
        print()
        for name, r in results.items():
            lens, neg = r["lens_s"], r["negative_s"]
            mocks = f"{len(lens) / sum(lens):.2f} mocks/s" if lens else "no mocks"
            negs = f"{len(neg) / sum(neg):.1f} negatives/s" if neg else "no negatives"
            print(
                f"{name:>9}: {mocks}, {negs}, {r['n'] / r['wall']:.2f} images/s written "
                f"({r['wall']:.1f} s for {r['n']} images, one process, zarr writes included); "
                f"report {r['report_wall']:.1f} s"
                + (f" -> {r['report'].path}" if args.out is not None else "")
            )
        try:
            print(f"load average: {os.getloadavg()[0]:.1f}")
        except OSError:
            pass
        if args.check:
            problems = _check(results)
            for p in problems:
                print("CHECK FAILED:", p)
            if problems:
                return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
