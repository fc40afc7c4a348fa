"""Lens-finding networks, their input transform, checkpoints and training (needs PyTorch).

* :class:`ResNet18` (the paper's network) and :class:`ConvNeXtNano`, found by name through
  :func:`get_network` / :func:`register_network` (entry-point group ``clusterlens.nets``,
  and ``"timm:<model>"`` when timm is installed);
* :class:`AsinhStretch`, the versioned input transform saved in every checkpoint;
* :func:`save_checkpoint` / :func:`load_checkpoint`;
* :class:`Trainer` and :class:`TrainingConfig` with the paper's presets ``"case1"`` and
  ``"case2"``, and :func:`plot_training_history` (the paper's Figure 4).
"""

from clusterlens.nets.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from clusterlens.nets.convnext import ConvNeXtNano
from clusterlens.nets.registry import available_networks, get_network, register_network
from clusterlens.nets.resnet import ResNet18
from clusterlens.nets.training import PRESETS, Trainer, TrainingConfig, plot_training_history
from clusterlens.nets.transforms import AsinhStretch, InputTransform, transform_from_dict

__all__ = [
    "PRESETS",
    "AsinhStretch",
    "CheckpointError",
    "ConvNeXtNano",
    "InputTransform",
    "LoadedCheckpoint",
    "ResNet18",
    "Trainer",
    "TrainingConfig",
    "available_networks",
    "get_network",
    "load_checkpoint",
    "plot_training_history",
    "register_network",
    "save_checkpoint",
    "transform_from_dict",
]
