"""``clusterlens train``: train a lens finder on a dataset directory."""

from __future__ import annotations

import argparse
import json

from clusterlens.errors import ClusterlensError, ParameterError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "train a lens-finding network on a dataset (recipes cpu/gpu, the paper's case1/case2)"
DESCRIPTION = """\
Train a network on a clusterlens dataset directory and write a run directory holding
last.pt (resumable), best.pt (best validation AUC), metrics.csv/json, config.json and
training.png (loss, AUC and dAUC/depoch against epoch, like the paper's Figure 4).

Without --val, a stratified --val-fraction of --data is held out for validation.

Presets: cpu (a laptop: ResNet-18 at 1/4 width, 128-pixel crop, AdamW 2e-3 with warm-up and
cosine decay, gradient clipping, EMA weights, 12 epochs), gpu (the paper's case 1 on a GPU:
ResNet-18, 223 pixels, Adam 3e-6, 200 epochs); both add the per-cutout robust input scaling,
the sky augmentations and a calibration of best.pt on the validation set.  case1/case2 are
the paper's hyper-parameters.  Options given explicitly override the preset's.

example:
  clusterlens train --data mocks/ --preset cpu --out runs/cpu
  clusterlens train --data mocks/ --preset case1 --epochs 200 --out runs/case1
  clusterlens train --data mocks/ --preset case1 --epochs 200 --out runs/case1 --resume
  clusterlens train --data mocks/ --preset cpu --out runs/hn --negative-pool fields/ \
      --hard-negative-rounds 2 --hard-negatives 200
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="training dataset directory")
    parser.add_argument("--val", help="validation dataset directory (default: split --data)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="fraction of --data held out when --val is not given (0.1)",
    )
    parser.add_argument(
        "--preset",
        default="case1",
        choices=["case1", "case2", "cpu", "gpu"],
        help="recipe: cpu, gpu, or the paper's case1 (default) / case2",
    )
    parser.add_argument("--epochs", type=int, help="number of epochs (the preset's; 200)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    parser.add_argument("--network", help="registered network name (resnet18)")
    parser.add_argument(
        "--network-options",
        type=json.loads,
        default=None,
        help="network keyword arguments as JSON, e.g. '{\"widths\": [32, 64, 128, 256]}'",
    )
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--lr", type=float, help="override the preset's learning rate")
    parser.add_argument(
        "--crop",
        type=int,
        default=None,
        help="centre crop in pixels fed to the network (the preset's: 223, cpu 128; 0: none)",
    )
    parser.add_argument(
        "--downsample",
        type=int,
        default=None,
        help="average NxN pixel blocks of the crop (robust transform only; default 1: none)",
    )
    parser.add_argument(
        "--transform",
        choices=["robust", "asinh"],
        default="robust",
        help="input scaling: per-cutout robust (default) or the fixed asinh stretch",
    )
    parser.add_argument(
        "--no-sky-augment", action="store_true", help="no PSF/noise/flux/sky augmentations"
    )
    parser.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit a temperature on the validation set for best.pt (cpu/gpu presets: on)",
    )
    parser.add_argument("--negative-pool", help="dataset of negatives for hard-negative mining")
    parser.add_argument("--hard-negative-rounds", type=int, default=0, help="mining rounds (0)")
    parser.add_argument("--hard-negatives", type=int, default=0, help="negatives per round")
    parser.add_argument(
        "--hard-negative-every", type=int, default=1, help="epochs between rounds (1)"
    )
    parser.add_argument("--patience", type=int, help="early stopping after N epochs without gain")
    parser.add_argument("--no-augment", action="store_true", help="no rotations/flips/shifts")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--workers", type=int, help="data-loader processes")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from clusterlens.datasets import LensDataset
    from clusterlens.nets import PRESETS, AsinhStretch, RobustAsinhStretch, Trainer, TrainingConfig

    preset_transform = PRESETS[args.preset].get("transform", {})
    if args.transform == "robust":
        downsample = args.downsample or preset_transform.get("downsample", 1)
        transform = RobustAsinhStretch(downsample=downsample)
    elif args.downsample not in (None, 1):
        raise ParameterError(
            "--downsample needs the robust transform (--transform robust); the fixed asinh "
            "stretch does not bin."
        )
    else:
        transform = AsinhStretch()
    overrides = {
        "augment": not args.no_augment,
        "seed": args.seed,
        "device": args.device,
        "num_workers": args.workers,
        "threads": args.threads,
        "progress": not args.quiet,
        "early_stopping_patience": args.patience,
        "transform": transform.to_dict(),
        "hard_negative_rounds": args.hard_negative_rounds,
        "hard_negatives": args.hard_negatives,
        "hard_negative_every": args.hard_negative_every,
    }
    preset = PRESETS[args.preset]
    overrides["epochs"] = args.epochs or preset.get("epochs", 200)
    overrides["network"] = args.network or preset.get("network", "resnet18")
    if args.network_options is not None:
        overrides["network_options"] = args.network_options
    elif args.network is not None and args.network != preset.get("network", "resnet18"):
        overrides["network_options"] = {}
    overrides["crop"] = (args.crop or None) if args.crop is not None else preset.get("crop", 223)
    if args.no_sky_augment:
        overrides["sky_augmentation"] = None
    if args.calibrate is not None:
        overrides["calibrate"] = args.calibrate
    if args.hard_negative_rounds and not args.negative_pool:
        raise ClusterlensError("--hard-negative-rounds needs --negative-pool DATASET.")
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.lr is not None:
        overrides["lr"] = args.lr
    config = TrainingConfig.preset(args.preset, **overrides)
    data = LensDataset(args.data)
    if args.val:
        train, val = data, LensDataset(args.val)
    else:
        train, val = data.split(args.val_fraction, seed=args.seed)
    pool = LensDataset(args.negative_pool) if args.negative_pool else None
    trainer = Trainer(config, out=args.out, resume=args.resume).fit(train, val, negative_pool=pool)
    if not trainer.history_:
        raise ClusterlensError("No epoch was run (the run had already finished).")
    last = trainer.history_[-1]
    print(
        json.dumps(
            {
                "epochs": last["epoch"],
                "best_epoch": trainer.best_epoch_,
                "best_val_auc": round(trainer.best_auc_, 5),
                "last_val_auc": round(last["val_auc"], 5),
                "stopped_early": trainer.stopped_early_,
                "temperature": (
                    round(trainer.calibration_.temperature, 4) if trainer.calibration_ else None
                ),
                "hard_negatives": sum(len(r) for r in trainer.hard_negatives_),
                "out": str(args.out),
            }
        )
    )
    return 0
