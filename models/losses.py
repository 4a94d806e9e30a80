"""GAN losses. LSGAN (Mao et al. 2017) is CycleGAN's default: MSE to 1 for real, 0 for fake.

Every adversarial loss is called as `loss(logits, real, *, for_generator=False)`: the
discriminator's terms are `loss(D(real), True)` and `loss(D(fake), False)`, the generator's
`loss(D(fake), True, for_generator=True)`. LSGAN and the vanilla (BCE) loss give the generator
the discriminator's "real" target loss, so they ignore `for_generator`; the hinge loss does not.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def lsgan_loss(logits: torch.Tensor, real: bool, *, for_generator: bool = False) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.mse_loss(logits, target)


def bce_gan_loss(logits: torch.Tensor, real: bool, *, for_generator: bool = False) -> torch.Tensor:
    # The non-saturating generator loss of Goodfellow et al. 2014: -log D(G(z)), i.e. BCE to "real".
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def hinge_loss(logits: torch.Tensor, real: bool, *, for_generator: bool = False) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018).

    Discriminator: mean(relu(1 - D(x))) on real, mean(relu(1 + D(G(z)))) on fake, so logits
    already beyond the margin cost nothing. Generator: -mean(D(G(z))), not a hinge: it keeps
    pushing fakes' logits up however far they are.
    """
    if for_generator:
        if not real:
            # The generator's loss has no fake target; asking for one is a call-site mistake.
            raise ValueError("the hinge generator loss is -mean(logits); call it with real=True")
        return -logits.mean()
    return F.relu(1 - logits).mean() if real else F.relu(1 + logits).mean()


GAN_LOSSES = {"lsgan": lsgan_loss, "vanilla": bce_gan_loss, "hinge": hinge_loss}


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
