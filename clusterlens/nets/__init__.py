"""Lens-finding networks, their input transform, checkpoints and training (needs PyTorch).

* :class:`ResNet18` (the paper's network) and :class:`ConvNeXtNano`, found by name through
  :func:`get_network` / :func:`register_network` (entry-point group ``clusterlens.nets``,
  and ``"timm:<model>"`` when timm is installed);
* :class:`AsinhStretch`, the versioned input transform saved in every checkpoint;
* :func:`save_checkpoint` / :func:`load_checkpoint`;
* :class:`Trainer` and :class:`TrainingConfig` with the paper's presets ``"case1"`` and
  ``"case2"`` and the recipes ``"cpu"`` (a laptop) and ``"gpu"`` (the paper's, hardened),
  and :func:`plot_training_history` (the paper's Figure 4);
* :class:`RobustAsinhStretch` (per-cutout sky and noise scaling, the default of new runs) and
  :class:`SkyAugmentation` (PSF, noise, flux, sky-level augmentations);
* :func:`mine_hard_negatives`, :class:`Committee` / :func:`write_committee` /
  :func:`load_model`, :func:`calibrate_checkpoint` / :func:`fit_temperature`;
* :func:`evaluate` / :func:`evaluate_many` / :class:`EvaluationReport`: AUC, TPR0, TPR10,
  purity and completeness of a model on labelled datasets.
"""

from clusterlens.nets.augment import GENERALISATION, SkyAugmentation
from clusterlens.nets.calibration import (
    CalibrationReport,
    calibrate_checkpoint,
    fit_temperature,
)
from clusterlens.nets.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from clusterlens.nets.committee import Committee, load_model, write_committee
from clusterlens.nets.convnext import ConvNeXtNano
from clusterlens.nets.evaluation import (
    EvaluationReport,
    evaluate,
    evaluate_many,
    format_reports,
)
from clusterlens.nets.mining import hard_negative_subset, mine_hard_negatives
from clusterlens.nets.registry import available_networks, get_network, register_network
from clusterlens.nets.resnet import ResNet18
from clusterlens.nets.training import PRESETS, Trainer, TrainingConfig, plot_training_history
from clusterlens.nets.transforms import (
    AsinhStretch,
    InputTransform,
    RobustAsinhStretch,
    transform_from_dict,
)

__all__ = [
    "GENERALISATION",
    "PRESETS",
    "AsinhStretch",
    "CalibrationReport",
    "CheckpointError",
    "Committee",
    "ConvNeXtNano",
    "EvaluationReport",
    "InputTransform",
    "LoadedCheckpoint",
    "ResNet18",
    "RobustAsinhStretch",
    "SkyAugmentation",
    "Trainer",
    "TrainingConfig",
    "available_networks",
    "calibrate_checkpoint",
    "evaluate",
    "evaluate_many",
    "fit_temperature",
    "format_reports",
    "get_network",
    "hard_negative_subset",
    "load_checkpoint",
    "load_model",
    "mine_hard_negatives",
    "plot_training_history",
    "register_network",
    "save_checkpoint",
    "transform_from_dict",
    "write_committee",
]
