"""Bytes, write and read speed of a dataset's image storage: float32 (old) against quantised.

Writes the same realistic mock images (the default simulator, 3 x 223 x 223, half lenses and
half untouched fields) through :class:`clusterlens.datasets.DatasetWriter` in four ways:

* ``float32 zstd``: format version 1, the default before quantised storage (the reference);
* ``float32 raw``: version 1 with ``compressed=False``;
* ``quantized 1/8``: version 2, integers of sigma / 8 of each band's measured noise, the
  new default;
* ``quantized 1/16``: the same with sigma / 16.

For each it prints the bytes per image (image chunks; and the whole directory, records and
parameter table included), the time to write an image (``write``, quantisation included, and
``finalize`` per image), the time to read one back through ``LensDataset[k]`` (decoding
included; the files are in the page cache, as in the second epoch of a training run), and the
speeds in MB/s of float32 pixels (0.597 MB per image), with every ratio against
``float32 zstd`` of the same run.  For quantised storage it also prints the error against
the noise: RMS / sigma (measured on the image when written, and the sky noise from
:func:`clusterlens.observe.measure_sky_sigma`), and max |error| / step.

CPU times (``time.process_time``, all threads) give the speeds and ratios, wall times are
shown beside them: on a shared machine wall time counts waiting for the cores.
``--check`` exits 1 if quantised storage at sigma / 8 takes more than 0.15 MB per image,
errs by more than 0.04 sky sigma RMS, or reads slower (CPU) than 0.8x the float32 reference.

Run: ``PYTHONPATH=. python benchmarks/bench_storage.py [--n 24] [--repeat 3] [--check]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from clusterlens.datasets import DatasetWriter, LensDataset  # noqa: E402

MAX_MB_PER_IMAGE = 0.15
MAX_RMS_IN_SIGMA = 0.04
READ_FLOOR = 0.8
VARIANTS = (
    ("float32 zstd", {"storage": "float32"}),
    ("float32 raw", {"storage": "float32", "compressed": False}),
    ("quantized 1/8", {"storage": "quantized"}),
    ("quantized 1/16", {"storage": "quantized", "quantization_step": 1 / 16}),
)


def mock_images(n: int) -> list[tuple[np.ndarray, int]]:
    """``n`` images of the default mock simulator: lenses first, then untouched fields."""
    from clusterlens.mock import MockConfig
    from clusterlens.mock.dataset import make_image
    from clusterlens.mock.simulator import MockLensSimulator
    from clusterlens.mock.sky import SyntheticSky

    config = MockConfig()
    simulator, sky = MockLensSimulator(config), SyntheticSky(config)
    made = [
        make_image(i, seed=16, n_positive=n // 2, simulator=simulator, sky=sky) for i in range(n)
    ]
    return [(np.asarray(image, dtype=np.float32), int(label)) for image, label, _ in made]


def _bytes(path: Path, sub: str = "") -> int:
    root = path / sub if sub else path
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def write(path: Path, images, options: dict, repeat: int) -> dict:
    """Write the images to ``path`` with ``options`` (best of ``repeat``); times per image
    (``finalize`` of the last pass)."""
    n = len(images)
    times = []
    for _ in range(repeat):
        shutil.rmtree(path, ignore_errors=True)
        writer = DatasetWriter(path, n, images[0][0].shape, **options)
        t0, c0 = time.perf_counter(), time.process_time()
        for i, (image, label) in enumerate(images):
            writer.write(i, image, label, {"index_in_bench": i})
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    t0 = time.perf_counter()
    writer.finalize()
    finalize = time.perf_counter() - t0
    wall, cpu = min(times)
    return {
        "chunk_mb": _bytes(path, "images") / n / 1e6,
        "dir_mb": _bytes(path) / n / 1e6,
        "write_ms": 1e3 * wall / n,
        "write_cpu_ms": 1e3 * cpu / n,
        "finalize_ms": 1e3 * finalize / n,
    }


def read_all(results: dict, paths: dict, n: int, repeat: int) -> None:
    """Time ``LensDataset[k]`` over every image, the variants taking turns (best of
    ``repeat`` rounds), so that a change of load hits them all alike."""
    datasets = {name: LensDataset(path) for name, path in paths.items()}
    for ds in datasets.values():
        ds[0]  # open the arrays once, as a loader worker does
    best = {name: (np.inf, np.inf) for name in datasets}
    for _ in range(repeat):
        for name, ds in datasets.items():
            t0, c0 = time.perf_counter(), time.process_time()
            back = [ds[k][0] for k in range(n)]
            best[name] = min(best[name], (time.perf_counter() - t0, time.process_time() - c0))
            results[name]["back"] = back
    for name, (wall, cpu) in best.items():
        results[name].update(
            read_ms=1e3 * wall / n, read_cpu_ms=1e3 * cpu / n, dataset=datasets[name]
        )


def errors(result: dict, images) -> dict:
    """RMS error / measured sigma, / sky sigma, and max |error| / step, over all bands."""
    from clusterlens.observe import measure_sky_sigma

    ds = result["dataset"]
    rms_sigma, rms_sky, max_step, bias = [], [], [], []
    for i, (image, _) in enumerate(images):
        error = result["back"][i].astype(np.float64) - image
        rms = np.sqrt((error**2).mean(axis=(1, 2)))
        sky = measure_sky_sigma(np.where(image == 0, np.nan, image))  # masked patches: NaN
        rms_sigma.append(rms / ds.images.noise_sigma[i])
        rms_sky.append(rms / sky)
        max_step.append(np.abs(error).max(axis=(1, 2)) / ds.images.step[i])
        bias.append(error.mean(axis=(1, 2)) / sky)
    return {
        "rms_sigma": float(np.mean(rms_sigma)),
        "rms_sky_max": float(np.max(rms_sky)),
        "max_step": float(np.max(max_step)),
        "bias_max": float(np.max(np.abs(bias))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=24, help="mock images written (24)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many passes (3)")
    parser.add_argument("--check", action="store_true", help="exit 1 outside the targets")
    args = parser.parse_args(argv)
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}, cpus: {os.cpu_count()}")
    t0 = time.perf_counter()
    images = mock_images(args.n)
    pixels_mb = images[0][0].nbytes / 1e6
    print(
        f"{args.n} mock images {images[0][0].shape} ({pixels_mb:.3f} MB of float32 each) "
        f"made in {time.perf_counter() - t0:.1f} s"
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_storage."))
    results, paths = {}, {}
    try:
        # warm-up: imports and first calls (zarr, Blosc, pyarrow) are not the format's cost
        for _, options in VARIANTS:
            write(tmp / "warm-up", images[:2], options, 1)
        for _ in range(args.repeat):  # the variants take turns, as for reading
            for name, options in VARIANTS:
                paths[name] = tmp / name.replace(" ", "_").replace("/", "-")
                result = write(paths[name], images, options, 1)
                if name not in results or result["write_ms"] < results[name]["write_ms"]:
                    results[name] = result
        read_all(results, paths, len(images), 2 * args.repeat)
        ref = results["float32 zstd"]
        head = (
            f"{'storage':15s} {'MB/image':>8s} {'(dir)':>6s} {'ratio':>6s} | {'write cpu':>9s} "
            f"{'wall':>6s} {'MB/s':>6s} {'ratio':>6s} {'final.':>6s} | {'read cpu':>8s} "
            f"{'wall':>6s} {'MB/s':>6s} {'ratio':>6s}"
        )
        print(head)
        print("-" * len(head))
        for name, r in results.items():
            print(
                f"{name:15s} {r['chunk_mb']:8.4f} {r['dir_mb']:6.3f} "
                f"{ref['chunk_mb'] / r['chunk_mb']:5.2f}x | {r['write_cpu_ms']:6.2f} ms "
                f"{r['write_ms']:6.2f} {pixels_mb * 1e3 / r['write_cpu_ms']:6.1f} "
                f"{ref['write_cpu_ms'] / r['write_cpu_ms']:5.2f}x {r['finalize_ms']:6.2f} | "
                f"{r['read_cpu_ms']:5.2f} ms {r['read_ms']:6.2f} "
                f"{pixels_mb * 1e3 / r['read_cpu_ms']:6.1f} "
                f"{ref['read_cpu_ms'] / r['read_cpu_ms']:5.2f}x"
            )
        print(
            "(per image; MB/s of float32 pixels per CPU second; ratio: float32 zstd / this, > 1 "
            "is better; wall ms and finalize ms per image are wall-clock)"
        )
        print("\nerror against the noise")
        checks = {}
        for name, r in results.items():
            if not name.startswith("quantized"):
                continue
            e = errors(r, images)
            images_ = r["dataset"].images
            expected = float(np.median(images_.step / images_.noise_sigma)) / 12**0.5
            print(
                f"{name:15s} RMS {e['rms_sigma']:.4f} sigma (measured; step / sqrt(12) = "
                f"{expected:.4f}), <= {e['rms_sky_max']:.4f} sky sigma; max |error| "
                f"{e['max_step']:.4f} step; |mean| <= {e['bias_max']:.1e} sigma"
            )
            checks[name] = e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.check:
        q = results["quantized 1/8"]
        failures = []
        if q["chunk_mb"] > MAX_MB_PER_IMAGE:
            failures.append(f"{q['chunk_mb']:.3f} MB per image > {MAX_MB_PER_IMAGE}")
        if checks["quantized 1/8"]["rms_sky_max"] > MAX_RMS_IN_SIGMA:
            failures.append(f"RMS error > {MAX_RMS_IN_SIGMA} sigma")
        if ref["read_cpu_ms"] / q["read_cpu_ms"] < READ_FLOOR:
            failures.append(f"reads below {READ_FLOOR}x the float32 reference")
        if failures:
            print("FAIL: " + "; ".join(failures), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
