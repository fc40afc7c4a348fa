"""Scoring throughput of the lens finder, each figure beside its reference from the same run.

Times ResNet-18 on 3 x 223 x 223 inputs in inference mode and prints, for every figure, the
reference it is judged against and the ratio (the machine may be shared: only ratios of
figures timed in the same interleaved rounds mean much there):

* the plain variants: the same network, eager, ``model(x)``, fp32 or bf16 autocast, NCHW or
  ``channels_last`` (the layout change of the input counted, batches arrive as NCHW);
* ours: what :class:`clusterlens.nets.scoring.Scorer` runs per batch (the checkpoint's
  transform from raw fluxes, the prepared network, the logits back as numpy), fp32 and bf16,
  each against the best plain variant of its precision (target: >= 1);
* end to end: ``Scorer.score`` over a dataset on disk (reading, checks, transform, network,
  parts) against ``Scorer.predict`` on the same images in memory (target: >= 0.9);
* the full survey on this CPU (540,432 cutouts): ours in fp32, bf16 and int8
  (``precision="int8"``) for the paper's ResNet-18 at 223 px and for the ``cpu`` recipe's
  narrow ResNet-18 (widths 16, 32, 64, 128) at 128 px, in images/s and projected hours
  (target: <= 1 h), and how far int8 and bf16 logits are from fp32 on toy cutouts.

Next to the CPU figures it prints the measured fp32 and bf16 matmul rates and the fraction of
the fp32 limit the network reaches (1.82 GMAC per 223 px image, counted layer by layer).
``--check`` exits with status 1 when ours falls below ``--floor`` times its reference.

``--auc CHECKPOINT --test DATASET... --calibration DATASET`` instead compares the finder's
figures (AUC, TPR0, TPR10) in fp32, bf16 and int8 on labelled test sets, e.g. the
generalisation benchmark's (:func:`precision_reports`).

    PYTHONPATH=. python benchmarks/bench_scoring.py --threads 2
    PYTHONPATH=. python benchmarks/bench_scoring.py --device cuda --batch 256 --check
    PYTHONPATH=. python benchmarks/bench_scoring.py --auc runs/cpu/best.pt \
        --test data/generalisation/test-* --calibration data/train
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clusterlens.nets import AsinhStretch, get_network, save_checkpoint
from clusterlens.nets._runtime import autocast
from clusterlens.nets._scoring_run import ScoringEngine
from clusterlens.nets.scoring import Scorer, ScoringConfig

SURVEY = 540_432  # cutouts of the paper's survey
NARROW = {"widths": [16, 32, 64, 128]}  # the "cpu" training recipe's network, crop 128


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def count_macs(model, size: int) -> int:
    """Multiply-accumulates of every Conv2d and Linear layer for one ``size`` x ``size`` image."""
    macs = []

    def conv(module, inputs, output):
        kh, kw = module.kernel_size
        macs.append(output.numel() * (module.in_channels // module.groups) * kh * kw)

    def linear(module, inputs, output):
        macs.append(output.numel() * module.in_features)

    hooks = [
        m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return int(sum(macs))


def _best_seconds(fns: dict, device, rounds) -> dict:
    """Best time of each no-argument function, timed in interleaved rounds so that the load
    of a shared machine, drifting during the run, affects all of them alike."""
    best = dict.fromkeys(fns, float("inf"))
    with torch.inference_mode():
        for fn in fns.values():
            fn()  # warm-up: allocator, kernel selection
        _sync(device)
        for _ in range(rounds):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                _sync(device)
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _network(options=None, seed=0):
    """ResNet-18 with spread batch-norm statistics (a freshly built one has every block's
    last batch norm at zero, which makes int8 and bf16 look better than they are)."""
    torch.manual_seed(seed)
    model = get_network("resnet18", **(options or {}))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 2.0)
                module.running_mean.normal_(0.0, 0.1)
    return model.eval()


def variant(model, device, x, *, bf16: bool, channels_last: bool):
    model = model.to(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )

    def run():  # the layout change is part of the cost: batches arrive as NCHW
        inputs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        with autocast(device.type, torch.bfloat16 if bf16 else None):
            return model(inputs)

    return run


def _in_memory_vs_disk(path, device, *, batch, size, n_images, precision, rounds=2):
    """(end-to-end images/s of Scorer.score from a dataset on disk, images/s of
    Scorer.predict on the same images in memory), best of ``rounds`` interleaved pairs."""
    from clusterlens.datasets import LensDataset, write_toy_dataset

    with tempfile.TemporaryDirectory() as tmp:
        write_toy_dataset(Path(tmp) / "ds", n_images, size=size)
        data = LensDataset(Path(tmp) / "ds")
        images = np.stack([np.asarray(data.images[int(i)], np.float32) for i in data.indices])
        scorer = Scorer(
            path, batch_size=batch, device=str(device), precision=precision, progress=False
        )
        scorer.score(data.subset(data.indices[:batch]))  # warm-up: engine, readers
        scorer.predict(images[:batch])
        disk = memory = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            scorer.score(data)
            disk = min(disk, time.perf_counter() - t0)
            t0 = time.perf_counter()
            scorer.predict(images)
            memory = min(memory, time.perf_counter() - t0)
        return n_images / disk, n_images / memory


def _survey_engines(tmp, device, batch, rounds):
    """images/s of ours in fp32, bf16 and int8 for the paper's and the narrow network, and
    the largest logit difference of bf16 and int8 from fp32 on toy cutouts."""
    from clusterlens.datasets import write_toy_dataset

    rates, agreement = {}, {}
    for label, options, size in (("ResNet-18 223 px", None, 223), ("narrow 128 px", NARROW, 128)):
        calib = Path(tmp) / f"calib-{size}"
        write_toy_dataset(calib, 2 * batch, size=size, seed=1)
        data = write_toy_dataset(Path(tmp) / f"test-{size}", batch, size=size)
        images = np.stack([np.asarray(data.images[int(i)], np.float32) for i in data.indices])
        path = save_checkpoint(
            Path(tmp) / f"m{size}.pt",
            _network(options),
            transform=AsinhStretch(),
            config={"crop": size},
        )
        loaded = Scorer(path, progress=False).checkpoint
        fns, engines = {}, {}
        for precision in ("fp32", "bf16", "int8"):
            config = ScoringConfig(
                batch_size=batch,
                device=str(device),
                precision=precision,
                size=size,
                calibration=str(calib) if precision == "int8" else None,
                calibration_images=2 * batch,
                progress=False,
            )
            engine = engines[precision] = ScoringEngine(loaded, config)
            fns[f"{label} {precision}"] = lambda e=engine, x=images: e.logits(x)
        seconds = _best_seconds(fns, device, rounds)
        rates.update({name: batch / t for name, t in seconds.items()})
        reference = engines["fp32"].logits(images)
        for precision in ("bf16", "int8"):
            diff = np.abs(engines[precision].logits(images) - reference)
            agreement[f"{label} {precision}"] = (float(diff.max()), float(np.abs(reference).max()))
    return rates, agreement


def precision_reports(
    checkpoint, datasets, calibration, *, precisions=("fp32", "bf16", "int8"), batch_size=64
):
    """The finder's figures on labelled ``datasets`` for each scoring precision.

    Parameters
    ----------
    checkpoint : str or Path
        A trained checkpoint (``best.pt``).
    datasets : sequence of LensDataset or path
        Labelled test sets (lenses and non-lenses), e.g. the generalisation benchmark's.
    calibration : str or Path
        The dataset whose first 256 images set the int8 activation ranges (images like the
        ones scored, e.g. the training or validation set; not a test set).
    precisions : sequence of str
        :attr:`ScoringConfig.precision` values; the first is the reference.

    Returns
    -------
    dict
        ``{precision: [EvaluationReport per dataset]}``.
    """
    from clusterlens.nets import evaluate

    reports = {}
    for precision in precisions:
        scorer = Scorer(
            checkpoint,
            batch_size=batch_size,
            device="cpu",
            precision=precision,
            calibration=str(calibration) if precision == "int8" else None,
            progress=False,
        )
        reports[precision] = [evaluate(scorer, data) for data in datasets]
    return reports


def _print_precision_reports(reports) -> None:
    reference, *others = reports
    print(f"{'dataset':24s} {'precision':9s} {'AUC':>7s} {'dAUC':>8s} {'TPR0':>6s} {'TPR10':>6s}")
    for i, ref in enumerate(reports[reference]):
        for precision in (reference, *others):
            r = reports[precision][i]
            print(
                f"{r.name:24s} {precision:9s} {r.auc:7.4f} {r.auc - ref.auc:+8.4f} "
                f"{r.tpr0:6.3f} {r.tpr10:6.3f}"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="32 on CPU, 256 on GPU")
    parser.add_argument("--size", type=int, default=223)
    parser.add_argument("--rounds", type=int, default=6, help="timed batches per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--images", type=int, default=None, help="end-to-end images")
    parser.add_argument("--no-survey", action="store_true", help="skip the CPU survey figures")
    parser.add_argument("--auc", default=None, help="checkpoint: compare AUC by precision")
    parser.add_argument("--test", nargs="+", default=(), help="labelled test datasets (--auc)")
    parser.add_argument("--calibration", default=None, help="int8 calibration dataset (--auc)")
    parser.add_argument("--check", action="store_true", help="fail below --floor")
    parser.add_argument(
        "--floor", type=float, default=0.9, help="smallest acceptable ours / reference (0.9)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.auc:
        if not args.test or not args.calibration:
            parser.error("--auc needs --test DATASET... and --calibration DATASET")
        _print_precision_reports(precision_reports(args.auc, args.test, args.calibration))
        return 0
    device = torch.device(args.device)
    cpu = device.type == "cpu"
    batch = args.batch or (32 if cpu else 256)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False  # the baseline is true fp32

    model = _network()
    macs = count_macs(model, args.size)
    x = torch.randn(batch, 3, args.size, args.size, device=device)
    images = x.cpu().numpy().astype(np.float32) * 0.02  # fluxes [nanomaggies]
    fast = "bf16" if cpu else "auto"  # on GPU "auto" is bf16 (fp16 without bf16 units)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(
            Path(tmp) / "m.pt", model, transform=AsinhStretch(), config={"crop": args.size}
        )
        scorer = Scorer(path, batch_size=batch, device=str(device), progress=False)
        engines = {
            precision: ScoringEngine(
                scorer.checkpoint, ScoringConfig(**{**scorer.config.__dict__, "precision": p})
            )
            for precision, p in (("fp32", "fp32"), ("bf16", fast))
        }
        n = 2048  # matmul rates, timed in the same rounds as the network
        a32, b32 = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        a16, b16 = a32.bfloat16(), b32.bfloat16()
        fns = {"matmul fp32": lambda: a32 @ b32, "matmul bf16": lambda: a16 @ b16}
        for bf16 in (False, True):
            for cl in (False, True):
                name = f"plain {'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'NCHW'}"
                fns[name] = variant(_network().to(device), device, x, bf16=bf16, channels_last=cl)
        for precision, engine in engines.items():
            fns[f"ours {precision}"] = lambda engine=engine: engine.logits(images)
        seconds = _best_seconds(fns, device, args.rounds)
        peak = 2 * n**3 / seconds.pop("matmul fp32") / 1e9
        peak_bf16 = 2 * n**3 / seconds.pop("matmul bf16") / 1e9
        rates = {name: batch / t for name, t in seconds.items()}

        # Printed section by section, so that a run cut short on a busy machine still says
        # something.
        name = torch.cuda.get_device_name(device) if not cpu else "CPU"
        gflop = 2 * macs / 1e9
        print(
            f"device: {name}, threads {torch.get_num_threads()}, batch {batch}, {args.size} px; "
            f"ResNet-18: {macs / 1e9:.3f} GMAC = {gflop:.3f} GFLOP per image"
        )
        for what, rate in (("fp32 (TF32 off)", peak), ("bf16", peak_bf16)):
            print(
                f"{what:15s} matmul rate (2048^2): {rate:9.1f} GFLOP/s -> limit "
                f"{rate / gflop:8.1f} images/s"
            )
        print()
        for label, rate in rates.items():
            print(
                f"{label:26s}: {rate:9.1f} images/s ({rate * gflop / peak:6.1%} of the fp32 limit)"
            )
        print()
        checks = []
        print(f"{'figure':34s} {'img/s':>8s}   {'reference':34s} {'img/s':>8s}  ratio  target")

        def compare(label, rate, ref_label, ref_rate, target):
            ratio = rate / ref_rate
            checks.append((label, ratio, target))
            print(
                f"{label:34s} {rate:8.1f}   {ref_label:34s} {ref_rate:8.1f}  {ratio:5.2f}  "
                f">= {target}",
                flush=True,
            )

        compare("ours fp32", rates["ours fp32"], "plain fp32 NCHW (baseline)",
                rates["plain fp32 NCHW"], 1.0)  # fmt: skip
        for precision in ("fp32", "bf16"):
            plain = {k: v for k, v in rates.items() if k.startswith(f"plain {precision}")}
            best = max(plain, key=plain.get)
            compare(f"ours {precision}", rates[f"ours {precision}"], f"best {best}",
                    plain[best], 1.0)  # fmt: skip
        n_images = args.images or 6 * batch
        for precision, p in (("fp32", "fp32"), ("bf16", fast)):
            disk, memory = _in_memory_vs_disk(
                path, device, batch=batch, size=args.size, n_images=n_images, precision=p
            )
            compare(f"ours {precision} end to end (disk)", disk,
                    f"ours {precision} in memory (predict)", memory, 0.9)  # fmt: skip
        if cpu and not args.no_survey:
            rates_s, agreement = _survey_engines(tmp, device, batch, max(2, args.rounds // 2))
            print(f"\nfull survey ({SURVEY:,} cutouts) on {torch.get_num_threads()} threads:")
            for label, rate in rates_s.items():
                fp32 = rates_s[label.rsplit(" ", 1)[0] + " fp32"]
                extra = ""
                if label in agreement:
                    worst, scale = agreement[label]
                    extra = f"; max |d logit| vs fp32 {worst:.3f} (logits up to {scale:.2f})"
                print(
                    f"  {label:24s} {rate:8.1f} images/s = {SURVEY / rate / 3600:5.2f} h"
                    f" ({rate / fp32:4.2f} x fp32){extra}"
                )
    failed = [c for c in checks if c[1] < args.floor * c[2]]
    if args.check and failed:
        for label, ratio, target in failed:
            print(f"FAIL: {label}: {ratio:.2f} < {args.floor} x {target}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
