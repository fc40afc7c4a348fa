"""``clusterlens evaluate``: the finder's figures (AUC, TPR0, TPR10, purity, completeness)
on a labelled dataset, with ROC / precision-recall plots."""

from __future__ import annotations

import json
from pathlib import Path

from clusterlens.cli.score import add_symmetries_argument
from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "AUC, TPR0, TPR10, purity and completeness of a model on a labelled dataset"
DESCRIPTION = """\
Score a labelled dataset directory with a checkpoint or a committee manifest (the model's own
input transform, crop and calibration) and print AUC, TPR0 and TPR10 (the largest
completeness with no / fewer than ten false positives), average precision, purity and
completeness at --threshold (the paper's 0.986), and the calibration error of the scores.
With --out, write OUT/evaluation.json, OUT/roc_pr.png (ROC and precision-recall curves,
threshold starred) and OUT/scores.csv.

example:
  clusterlens evaluate --model runs/cpu/best.pt --data mocks_test/ --out eval/
  clusterlens evaluate --model committee.json --data other_sky/ --threshold 0.9
"""


def add_arguments(parser) -> None:
    parser.add_argument(
        "--model", required=True, type=Path, help="checkpoint (.pt) or committee (.json)"
    )
    parser.add_argument("--data", required=True, type=Path, help="labelled dataset directory")
    parser.add_argument("--out", type=Path, help="folder for evaluation.json and the plots")
    parser.add_argument(
        "--threshold", type=float, default=None, help="probability threshold (0.986)"
    )
    parser.add_argument("--name", help="label of the dataset in the report")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    add_symmetries_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from clusterlens.metrics import PAPER_THRESHOLD
    from clusterlens.nets.evaluation import evaluate, format_reports

    threshold = PAPER_THRESHOLD if args.threshold is None else args.threshold
    if not 0 <= threshold <= 1:
        raise ClusterlensError(f"--threshold must be in [0, 1]; got {threshold}.")
    if args.batch_size < 1:
        raise ClusterlensError(f"--batch-size must be >= 1; got {args.batch_size}.")
    if not args.model.is_file():
        raise ClusterlensError(f"--model {str(args.model)!r} is not a file.")
    if not (args.data / "zarr.json").is_file():
        raise ClusterlensError(f"--data {str(args.data)!r} is not a clusterlens dataset folder.")
    report = evaluate(
        str(args.model),
        args.data,
        threshold=threshold,
        name=args.name,
        batch_size=args.batch_size,
        device=args.device,
        symmetries=args.symmetries,
        progress=not args.quiet,
    )
    print(format_reports([report]))
    figures = report.to_dict()
    if args.out is not None:
        paths = report.write(args.out)
        figures["files"] = {k: str(v) for k, v in paths.items()}
    print(json.dumps({k: figures[k] for k in ("auc", "tpr0", "tpr10", "purity", "completeness")}))
    return 0
