"""Training throughput of the lens finder: ours against a plain eager fp32 baseline.

Times full training steps (forward, cross-entropy, backward, Adam update) of ResNet-18 on
3 x 223 x 223 inputs, batch 32 by default:

* baseline: the same network in eager float32 with the default (NCHW) memory layout;
* ours: the step :class:`clusterlens.nets.Trainer` runs: on GPU ``channels_last`` and mixed
  precision (bf16, or fp16 with loss scaling); on CPU its defaults (float32, and
  ``channels_last`` only with ``--channels-last``, since it measured slower for training here).

It prints images per second for both (fastest and median step: on a shared machine other
users' load only ever slows a step down, so the fastest is the most reproducible), their
ratio, the machine's measured float32 matmul peak and the fraction of it each path reaches
(a training step costs about 3 x the forward pass's 1.82 GMAC = 10.9 GFLOP per image).
``--check`` exits with status 1 when ours falls below ``--floor`` times the baseline.

    PYTHONPATH=. python benchmarks/bench_training.py --threads 2
    PYTHONPATH=. python benchmarks/bench_training.py --device cuda --batch 256 --check
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from clusterlens.nets import Trainer, get_network

FORWARD_GMAC = 1.82  # ResNet-18 at 224 x 224 (He et al. 2016); 223 px differs by < 1%
TRAIN_GFLOP_PER_IMAGE = 3 * 2 * FORWARD_GMAC


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device, n=2048, repeats=10) -> float:
    """Measured float32 (TF32 off) matmul rate in GFLOP/s."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    best = float("inf")
    for _ in range(repeats):  # the fastest repeat: other users' load only ever slows us down
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def images_per_second(
    device, *, batch, size, steps, optimised: bool, channels_last=None
) -> tuple[float, float]:
    """(best, median) images per second over ``steps`` timed training steps."""
    torch.manual_seed(0)
    model = get_network("resnet18").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-6, weight_decay=0.1)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 2, (batch,), device=device)
    if optimised:
        trainer = Trainer(out="unused")  # only its step is used: nothing is written
        if channels_last if channels_last is not None else device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        amp_dtype = None
        if device.type == "cuda":
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

        def step():
            trainer._step(model, optimizer, scaler, x, y, amp_dtype)
    else:

        def step():
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    model.train()
    for _ in range(2):  # warm-up: allocator, kernel selection
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return batch / times[0], batch / times[len(times) // 2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=223)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--channels-last", action="store_true", help="force it for ours")
    parser.add_argument("--check", action="store_true", help="fail below --floor")
    parser.add_argument(
        "--floor", type=float, default=0.9, help="smallest acceptable ours / baseline ratio (0.9)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    peak = matmul_peak(device)
    base = images_per_second(
        device, batch=args.batch, size=args.size, steps=args.steps, optimised=False
    )
    ours = images_per_second(
        device,
        batch=args.batch,
        size=args.size,
        steps=args.steps,
        optimised=True,
        channels_last=True if args.channels_last else None,
    )
    ratio = ours[0] / base[0]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device: {name}, threads {torch.get_num_threads()}, batch {args.batch}, "
        f"{args.size} px, {args.steps} timed steps"
    )
    print(f"fp32 matmul peak (2048^2, TF32 off): {peak:10.1f} GFLOP/s")
    for label, (best, median) in (
        ("baseline eager fp32 NCHW", base),
        ("ours (Trainer step)", ours),
    ):
        frac = best * TRAIN_GFLOP_PER_IMAGE / peak
        print(
            f"{label:26s}: {best:10.1f} images/s best step, {median:.1f} median "
            f"({frac:5.1%} of the fp32 matmul peak)"
        )
    print(f"ratio ours / baseline (best steps): {ratio:.2f} (floor {args.floor})")
    if args.check and ratio < args.floor:
        print("FAIL: the optimised training step fell behind the baseline", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
