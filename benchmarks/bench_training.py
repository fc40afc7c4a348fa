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

``--stability`` measures instead how steady the validation AUC is from epoch to epoch on a
small CPU run: the old settings (Adam 3e-3 constant, batch 16, fixed asinh stretch, no sky
augmentations) against the ``cpu`` recipe, on the same toy dataset (``write_toy_dataset`` at
the recipe's 128-pixel crop), and scores both on a copy of the validation set as another sky
would show it (3x the flux, a sky offset, 0.5" more blur, 1.5x the noise):

    PYTHONPATH=. python benchmarks/bench_training.py --stability --images 1200 --epochs 6
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
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


def _other_sky(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """The images as a deeper-calibrated, worse-seeing, noisier sky would give them."""
    from clusterlens.nets.augment import gaussian_blur
    from clusterlens.nets.transforms import robust_background_noise

    x = torch.from_numpy(images)
    _, noise = robust_background_noise(x)
    sigma = torch.full(x.shape[:2], 0.5 / 2.3548 / 0.262)
    x = gaussian_blur(x, sigma) * 3.0
    rng = torch.Generator().manual_seed(seed)
    x = x + 3.0 * noise * (1.12 * torch.randn(x.shape, generator=rng))  # 1.5x in quadrature
    x = x + 2.0 * 3.0 * noise  # sky offset of 2 sigma
    return x.numpy()


def stability(args) -> int:
    """Val AUC per epoch: old settings against the cpu recipe."""
    import tempfile
    from pathlib import Path

    from clusterlens.datasets import write_toy_dataset
    from clusterlens.nets import AsinhStretch, TrainingConfig, evaluate

    torch.set_num_threads(args.threads or 1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-stability-"))
    t0 = time.perf_counter()
    data = write_toy_dataset(
        tmp / "data", args.images, size=args.crop, arc_snr=args.arc_snr, seed=args.seed
    )
    train, val = data.split(0.25, seed=0)
    images = np.stack([val[k][0] for k in range(len(val))])
    shifted = (_other_sky(images), val.view_labels)
    print(
        f"toy data: {len(train)} training, {len(val)} validation images of {args.crop} px, "
        f"arcs at {args.arc_snr} sigma peak ({time.perf_counter() - t0:.0f} s)"
    )
    common = dict(
        network_options={"widths": [16, 32, 64, 128]},
        crop=args.crop,
        epochs=args.epochs,
        progress=False,
        seed=args.seed,
        threads=args.threads or 1,
    )
    configs = {
        "old (Adam 3e-3, fixed asinh)": TrainingConfig(
            network="resnet18",
            lr=3e-3,
            weight_decay=0.0,
            batch_size=16,
            transform=AsinhStretch().to_dict(),
            **common,
        ),
        "cpu recipe": TrainingConfig.preset("cpu", **common),
    }
    from clusterlens.nets import Trainer

    for label, config in configs.items():
        t0 = time.perf_counter()
        trainer = Trainer(config, out=tmp / label.split()[0]).fit(train, val)
        aucs = np.array([h["val_auc"] for h in trainer.history_])
        steps = np.abs(np.diff(aucs))
        other = evaluate(str(tmp / label.split()[0] / "best.pt"), shifted, device="cpu")
        print(f"{label}: {time.perf_counter() - t0:.0f} s")
        print("  val AUC per epoch: " + ", ".join(f"{a:.3f}" for a in aucs))
        print(
            f"  range {aucs.min():.3f}-{aucs.max():.3f}; epoch-to-epoch |dAUC| mean "
            f"{steps.mean():.3f}, max {steps.max():.3f}; after epoch {len(aucs) // 2}: "
            f"min {aucs[len(aucs) // 2 :].min():.3f}"
        )
        print(
            f"  best epoch {trainer.best_epoch_}; on the other sky: AUC {other.auc:.3f}, "
            f"TPR10 {other.tpr10:.3f}, fraction scored >= 0.5: "
            f"{float((other.scores >= 0.5).mean()):.2f}"
        )
        if trainer.calibration_ is not None:
            c = trainer.calibration_
            print(
                f"  calibration: T = {c.temperature:.2f}, val NLL {c.nll_before:.3f} -> "
                f"{c.nll_after:.3f}, ECE {c.ece_before:.3f} -> {c.ece_after:.3f}"
            )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stability", action="store_true", help="val AUC per epoch instead")
    parser.add_argument("--images", type=int, default=1200, help="--stability: toy images")
    parser.add_argument("--epochs", type=int, default=6, help="--stability: epochs")
    parser.add_argument("--crop", type=int, default=128, help="--stability: image side")
    parser.add_argument("--arc-snr", type=float, default=3.0, help="--stability: arc peak SNR")
    parser.add_argument("--seed", type=int, default=0, help="--stability: seed")
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
    if args.stability:
        return stability(args)
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
