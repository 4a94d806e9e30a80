"""PatchGAN discriminator (Isola et al. 2017, pix2pix; used by CycleGAN).

With n_layers=3 each output logit sees a 70x70 patch; with n_layers=2 a 34x34 patch, and
n_layers=1 a 16x16 patch, which is what small images (16-32 px) call for.
"""
from __future__ import annotations

import torch
from torch import nn

from models.generators import init_weights


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) -> (B, 1, H', W') real/fake logits, one per patch."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        if in_channels < 1 or ndf < 1 or n_layers < 1:
            raise ValueError(
                f"PatchDiscriminator needs positive in_channels, ndf and n_layers, got "
                f"in_channels={in_channels}, ndf={ndf}, n_layers={n_layers}"
            )
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers):
            prev, mult = mult, min(2**i, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1),
                nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1),
            nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
