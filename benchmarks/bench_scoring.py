"""Scoring throughput of the lens finder: ours against a plain eager fp32 baseline.

Times the forward pass of ResNet-18 on 3 x 223 x 223 inputs in inference mode:

* baseline: the same network in eager float32, NCHW memory layout, ``model(x)``;
* the layout/precision variants (fp32 or bf16 autocast, NCHW or channels_last);
* ours: what :class:`clusterlens.nets.scoring.Scorer` runs with its default configuration
  on this device (the checkpoint's transform, then the network; on GPU bf16 autocast and
  channels_last);
* end to end: ``Scorer.score`` over a dataset on disk (reading, checks, transform, network,
  parts), to show whether the readers keep the network busy.

Next to the CPU figures it prints the measured float32 (and bf16) matmul rate and the
fraction of the limit it implies for the network: the multiply-accumulates of every
convolution and linear layer are counted at 223 x 223 (about 1.82 GMAC; 2 FLOP each).
``--check`` exits with status 1 when ours falls below ``--floor`` times the baseline.

    PYTHONPATH=. python benchmarks/bench_scoring.py --threads 2
    PYTHONPATH=. python benchmarks/bench_scoring.py --device cuda --batch 256 --check
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from clusterlens.nets import AsinhStretch, get_network, save_checkpoint
from clusterlens.nets.scoring import Scorer, ScoringConfig, _Engine


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


def variant(model, device, x, *, bf16: bool, channels_last: bool):
    model = model.to(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )

    def run():  # the layout change is part of the cost: batches arrive as NCHW
        inputs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        ctx = (
            torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        with ctx:
            return model(inputs)

    return run


def end_to_end(path, device, *, batch, size, n_images) -> float:
    from clusterlens.datasets import write_toy_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = write_toy_dataset(Path(tmp) / "ds", n_images, size=size)
        scorer = Scorer(path, batch_size=batch, device=str(device), progress=False)
        scorer.score(data.subset(data.indices[:batch]))  # warm-up
        t0 = time.perf_counter()
        scorer.score(data)
        return n_images / (time.perf_counter() - t0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="32 on CPU, 256 on GPU")
    parser.add_argument("--size", type=int, default=223)
    parser.add_argument("--rounds", type=int, default=6, help="timed batches per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--images", type=int, default=None, help="end-to-end images")
    parser.add_argument("--check", action="store_true", help="fail below --floor")
    parser.add_argument(
        "--floor", type=float, default=0.9, help="smallest acceptable ours / baseline ratio (0.9)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = args.batch or (256 if device.type == "cuda" else 32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False  # the baseline is true fp32

    torch.manual_seed(0)
    model = get_network("resnet18").eval()
    macs = count_macs(model, args.size)
    x = torch.randn(batch, 3, args.size, args.size, device=device)
    model = model.to(device)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(
            Path(tmp) / "m.pt", model.cpu(), transform=AsinhStretch(), config={"crop": args.size}
        )
        config = ScoringConfig(batch_size=batch, device=str(device), progress=False)
        scorer = Scorer(path, config)
        default = _Engine(scorer.checkpoint, scorer.config)
        images = x.cpu().numpy().astype(np.float32) * 0.02
        n = 2048  # matmul rates, timed in the same rounds as the network
        a32, b32 = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        a16, b16 = a32.bfloat16(), b32.bfloat16()
        fns = {
            "matmul fp32": lambda: a32 @ b32,
            "matmul bf16": lambda: a16 @ b16,
            "baseline": variant(model.to(device), device, x, bf16=False, channels_last=False),
        }
        for bf16 in (False, True):
            for cl in (False, True):
                name = f"  variant {'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'NCHW'}"
                fns[name] = variant(
                    get_network("resnet18").to(device).eval(),
                    device,
                    x,
                    bf16=bf16,
                    channels_last=cl,
                )
        label = f"ours (Scorer, {'bf16' if device.type == 'cuda' else 'fp32'} default)"
        fns[label] = lambda: default.logits(images)
        if device.type == "cpu":
            bf16_engine = _Engine(scorer.checkpoint, replace(scorer.config, precision="bf16"))
            fns["ours (Scorer, precision='bf16')"] = lambda: bf16_engine.logits(images)
            with torch.inference_mode():
                lf, lb = default.logits(images), bf16_engine.logits(images)
            agreement = (
                float(np.abs(lb - lf).max()),
                float(np.abs(1 / (1 + np.exp(-lb)) - 1 / (1 + np.exp(-lf))).max()),
            )
        seconds = _best_seconds(fns, device, args.rounds)
        peak = 2 * n**3 / seconds.pop("matmul fp32") / 1e9
        peak_bf16 = 2 * n**3 / seconds.pop("matmul bf16") / 1e9
        rates = {name: batch / t for name, t in seconds.items()}
        n_images = args.images or 8 * batch
        e2e = end_to_end(path, device, batch=batch, size=args.size, n_images=n_images)
    base, ours = rates.pop("baseline"), rates[label]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
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

    def line(label, rate):
        print(f"{label:38s}: {rate:9.1f} images/s  ({rate * gflop / peak:6.1%} of the fp32 limit)")

    line("baseline eager fp32 NCHW", base)
    for name, rate in rates.items():
        line(name, rate)
    line("ours end to end (Scorer.score, disk)", e2e)
    if device.type == "cpu":
        print(
            f"bf16 vs fp32 on these images: max |d logit| = {agreement[0]:.4f}, "
            f"max |d score| = {agreement[1]:.4f}"
        )
    ratio = ours / base
    print(f"ratio ours / baseline: {ratio:.2f} (floor {args.floor})")
    if device.type == "cpu":
        print(f"fraction of the fp32 limit: {ours * gflop / peak:.1%} (target >= 50%)")
    else:
        print(f"GPU target: >= 5000 images/s; ours {ours:.0f}")
    if args.check and ratio < args.floor:
        print("FAIL: the optimised scoring path fell behind the baseline", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
