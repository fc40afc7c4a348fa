"""ResNet-18 for 3-band cluster cutouts (He et al. 2016, as used by Zhang et al.).

Written in plain PyTorch (torchvision does not install beside the CPU build of torch used
here) with the layout of the standard ResNet-18, so that its parameter count, 11,177,538 with
a 2-class head, matches torchvision's ``resnet18(num_classes=2)``.
"""

from __future__ import annotations

import torch
from torch import nn

from clusterlens._validation import check_scalar

__all__ = ["BasicBlock", "ResNet18", "dropout_head"]


def dropout_head(n_features: int, num_classes: int, dropout: float, *, owner: str) -> nn.Module:
    """The classification head: ``Linear`` alone for ``dropout == 0`` (so a network without
    dropout keeps its parameter names and count), ``Sequential(Dropout(p), Linear)`` else."""
    p = check_scalar(dropout, "dropout", owner, low=0, high=1, high_inclusive=False)
    linear = nn.Linear(n_features, num_classes)
    return linear if p == 0 else nn.Sequential(nn.Dropout(p), linear)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU, plus an identity (or 1x1) shortcut.

    ``out = ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))``; the shortcut is a strided 1x1
    convolution with batch norm when the block changes the resolution or channel count.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """The paper's lens finder: ResNet-18 with a 2-logit head.

    Input (batch, 3, 223, 223): the g, r, z planes after the input transform.  A 7x7/2
    convolution and a 3x3/2 max-pool bring 223 pixels to 56; four stages of two
    :class:`BasicBlock` s with 64, 128, 256 and 512 channels (the last three starting with a
    stride of 2) bring it to 7x7; global average pooling and a linear layer give two logits
    (non-lens, lens).  Any input of at least 32 x 32 pixels works.

    Parameters
    ----------
    in_channels : int
        Number of bands (3).
    num_classes : int
        Number of logits (2).
    widths : tuple of 4 ints
        Channels of the four stages.
    dropout : float in [0, 1)
        Dropout probability on the 512-dimensional embedding before the head (0: none, the
        paper's network).  With ``dropout > 0`` the head is ``Sequential(Dropout, Linear)``
        and :mod:`clusterlens.nets.uncertainty` can draw Monte Carlo dropout samples.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        widths=(64, 128, 256, 512),
        dropout: float = 0.0,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, channels = [], widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(BasicBlock(channels, width, stride), BasicBlock(width, width))
            )
            channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = dropout_head(channels, num_classes, dropout, owner="ResNet18")
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        # Zero the last batch norm of each block so every block starts as the identity
        # (Goyal et al. 2017), which steadies the first epochs.
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 512-dimensional embedding before the head (for diagnostics such as UMAP)."""
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
