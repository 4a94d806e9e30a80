"""Instance normalisation that keeps its input's memory layout.

`nn.InstanceNorm2d` (ATen's `instance_norm`) reshapes its input into NCHW before it normalises. In a
channels_last (NHWC) network, the layout cuDNN's tensor-core convolutions want, every norm then
converts its input to NCHW in eager mode, and under `torch.compile` the traced backward hands each
convolution its gradient in NCHW, which cuDNN converts back (on an H100 at 256 px, batch 32, with
torch 2.11: 41 of the 258 ms of a CycleGAN step; benchmarks/RESULTS.md). Written as a reduction and
elementwise operations, the same normalisation keeps NHWC in both directions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _nhwc(x: torch.Tensor) -> bool:
    """A 4-D tensor laid out in NHWC and not also in NCHW (one channel or one pixel is both)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class InstanceNorm(nn.Module):
    """Per-image, per-channel normalisation over H and W, without affine parameters or running
    statistics: what `nn.InstanceNorm2d(channels)` computes, with the same state dict (none).

    NCHW inputs take ATen's kernel, as before. NHWC inputs are normalised in float32 (mean and
    biased variance, as ATen's) and returned in their own dtype and layout."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.eps = channels, eps

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _nhwc(x):  # also every 1x1 map, which ATen refuses in training (one pixel has no spread)
            return F.instance_norm(x, eps=self.eps)
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
        return ((xf - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)
