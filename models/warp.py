"""A learned global warp in front of a generator: a spatial transformer (Jaderberg et al. 2015).

CycleGAN's generators are convolutional and, with the U-Net's skip connections, keep every pixel
where it is: they repaint an image but cannot move what is in it. When two domains frame their
objects differently (another camera's field of view, another crop policy, objects filling the
frame in one set and not in the other), the discriminator sees the framing, and a generator that
cannot move content answers by painting strokes where the target's objects usually are: the
label flips. `AffineWarp` predicts one affine transform per image (scale, aspect, rotation,
shear, shift, each bounded) from the image itself and resamples it before the generator paints,
so re-framing is cheap and repainting is not needed. It starts as the identity, and where the
domains frame alike it has no reason to leave it. The warp is per image and differentiable, so
the cycle loss asks the reverse generator's warp to undo it (ST-GAN, Lin et al. 2018, learns
geometric corrections the same way, adversarially).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

WARPS = ("none", "affine")

# Bounds of the predicted transform: scales within [1/2, 2] per axis, rotation and shear within
# +-30 degrees, shifts within a quarter of the image on each side.
_LOG_SCALE, _ANGLE, _SHIFT = math.log(2.0), math.pi / 6, 0.5


class AffineWarp(nn.Module):
    """(B, C, H, W) -> the same images, each resampled through its own predicted affine transform.

    A small localisation network (two stride-2 convs, pooled to a 4x4 grid so positions survive,
    two linear layers) predicts six bounded numbers per image; the last layer starts at zero, so
    a new warp is the identity. Pixels from outside the image repeat its border (the background,
    for objects that do not touch the edge).
    """

    def __init__(self, channels: int, width: int = 16):
        super().__init__()
        if channels < 1 or width < 1:
            raise ValueError(f"AffineWarp needs positive channels and width, got channels={channels}, width={width}")
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(True),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * width, 4 * width), nn.ReLU(True), nn.Linear(4 * width, 6))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def locate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 6) unbounded transform parameters."""
        f = self.features(x)
        if f.shape[-2:] != (4, 4):  # pooled only where needed: on a CPU the pool costs a third of the warp at 16 px
            f = F.adaptive_avg_pool2d(f, 4)
        return self.head(f)

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 3) sampling matrices (output coordinates -> input coordinates, as affine_grid takes)."""
        raw = torch.tanh(self.locate(x).float())
        log_sx, log_sy = raw[:, 0] * _LOG_SCALE, raw[:, 1] * _LOG_SCALE
        angle, shear = raw[:, 2] * _ANGLE, raw[:, 3] * _ANGLE
        tx, ty = raw[:, 4] * _SHIFT, raw[:, 5] * _SHIFT
        # Content grows by exp(log_s): the sampling grid shrinks by its inverse.
        sx, sy = torch.exp(-log_sx), torch.exp(-log_sy)
        cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
        row0 = torch.stack([cos * sx, (cos * tan - sin) * sy, tx], 1)
        row1 = torch.stack([sin * sx, (sin * tan + cos) * sy, ty], 1)
        return torch.stack([row0, row1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x).to(x.dtype)
        # A NaN in the grid (weights gone non-finite in a diverging run) makes the CPU's grid_sample
        # backward crash the process (SIGSEGV) before the training loop can stop with a message;
        # finite grids pass unchanged.
        grid = torch.nan_to_num(F.affine_grid(theta, list(x.shape), align_corners=False))
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class Warped(nn.Module):
    """`generator(warp(x), *rest)`: the image is re-framed, then painted. Extra arguments (a
    conditional generator's labels) pass through to the generator untouched."""

    def __init__(self, generator: nn.Module, channels: int):
        super().__init__()
        self.warp = AffineWarp(channels)
        self.generator = generator

    @property
    def num_classes(self) -> int:
        return getattr(self.generator, "num_classes", 0)

    def forward(self, x: torch.Tensor, *rest) -> torch.Tensor:
        return self.generator(self.warp(x), *rest)


def check_warp_name(name: str) -> None:
    if name not in WARPS:
        raise ValueError(f"Unknown warp {name!r}. Valid: {', '.join(WARPS)}")
