"""A compact ConvNeXt (Liu et al. 2022) to compare with the paper's ResNet-18.

ConvNeXt keeps a plain convolutional network but borrows the design of vision transformers:
a 4x4 "patchify" stem, large 7x7 depthwise convolutions, LayerNorm, an inverted-bottleneck
MLP with GELU, and per-channel layer scale.  This small variant (3,375,162 parameters,
a third of ResNet-18's) is sized for 223 x 223 cutouts and the few tens of thousands of mock
images a lens search trains on.
"""

from __future__ import annotations

import torch
from torch import nn

from clusterlens.nets.resnet import dropout_head

__all__ = ["ConvNeXtNano", "ChannelsFirstLayerNorm"]


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (batch, channel, y, x) tensor."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class _Block(nn.Module):
    def __init__(self, channels: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(channels, 4 * channels), nn.GELU(), nn.Linear(4 * channels, channels)
        )
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (batch, y, x, channel) for the MLP
        y = self.mlp(self.norm(y)) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtNano(nn.Module):
    """A small ConvNeXt: stages of (2, 2, 6, 2) blocks with (40, 80, 160, 320) channels.

    Parameters
    ----------
    in_channels : int
        Number of bands (3).
    num_classes : int
        Number of logits (2).
    depths, widths : tuple of 4 ints
        Blocks and channels per stage.
    layer_scale : float
        Initial value of the per-channel residual scale (1e-6 in the paper).
    dropout : float in [0, 1)
        Dropout probability before the head (0: none), for Monte Carlo dropout.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        depths=(2, 2, 6, 2),
        widths=(40, 80, 160, 320),
        layer_scale: float = 1e-6,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 4, 4),
            ChannelsFirstLayerNorm(widths[0]),
        ]
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            if i:
                layers += [
                    ChannelsFirstLayerNorm(widths[i - 1]),
                    nn.Conv2d(widths[i - 1], width, 2, 2),
                ]
            layers += [_Block(width, layer_scale) for _ in range(depth)]
        self.body = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(widths[-1], eps=1e-6)
        self.head = dropout_head(widths[-1], num_classes, dropout, owner="ConvNeXtNano")
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled, normalised embedding before the head."""
        return self.norm(self.body(x).mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
