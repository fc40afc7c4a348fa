"""``clusterlens train``: train a lens finder on a dataset directory."""

from __future__ import annotations

import argparse
import json

from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "train a lens-finding network on a dataset (the paper's presets case1/case2)"
DESCRIPTION = """\
Train a network on a clusterlens dataset directory and write a run directory holding
last.pt (resumable), best.pt (best validation AUC), metrics.csv/json, config.json and
training.png (loss, AUC and dAUC/depoch against epoch, like the paper's Figure 4).

Without --val, a stratified --val-fraction of --data is held out for validation.

example:
  clusterlens train --data mocks/ --preset case1 --epochs 200 --out runs/case1
  clusterlens train --data mocks/ --preset case1 --epochs 200 --out runs/case1 --resume
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
        choices=["case1", "case2"],
        help="the paper's hyper-parameters (default case1)",
    )
    parser.add_argument("--epochs", type=int, default=200, help="number of epochs (200)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    parser.add_argument("--network", default="resnet18", help="registered network name")
    parser.add_argument(
        "--network-options",
        type=json.loads,
        default={},
        help="network keyword arguments as JSON, e.g. '{\"widths\": [32, 64, 128, 256]}'",
    )
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--lr", type=float, help="override the preset's learning rate")
    parser.add_argument(
        "--crop",
        type=int,
        default=223,
        help="centre crop in pixels fed to the network (223; 0: none)",
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
    from clusterlens.nets import Trainer, TrainingConfig

    overrides = {
        "network": args.network,
        "network_options": args.network_options,
        "epochs": args.epochs,
        "crop": args.crop or None,
        "augment": not args.no_augment,
        "seed": args.seed,
        "device": args.device,
        "num_workers": args.workers,
        "threads": args.threads,
        "progress": not args.quiet,
        "early_stopping_patience": args.patience,
    }
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
    trainer = Trainer(config, out=args.out, resume=args.resume).fit(train, val)
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
                "out": str(args.out),
            }
        )
    )
    return 0
