"""GAN losses. LSGAN (Mao et al. 2017) is CycleGAN's default: MSE to 1 for real, 0 for fake."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def lsgan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.mse_loss(logits, target)


def bce_gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


GAN_LOSSES = {"lsgan": lsgan_loss, "vanilla": bce_gan_loss}


def gan_loss(name: str):
    if name not in GAN_LOSSES:
        raise ValueError(f"Unknown GAN loss {name!r}. Valid: {', '.join(sorted(GAN_LOSSES))}")
    return GAN_LOSSES[name]


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between x and F(G(x)) (CycleGAN eq. 2)."""
    return F.l1_loss(reconstructed, original)


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between y and G(y): keeps colour/intensity when the input is already in the output domain."""
    return F.l1_loss(mapped, original)
