"""PatchGAN discriminator (Isola et al. 2017, pix2pix; used by CycleGAN).

With n_layers=3 each output logit sees a 70x70 patch; with n_layers=2 a 34x34 patch, and
n_layers=1 a 16x16 patch, which is what small images (16-32 px) call for.

Two optional extensions: spectral normalisation of every conv (Miyato et al. 2018, "Spectral
Normalization for Generative Adversarial Networks"), and class projection (Miyato & Koyama 2018,
"cGANs with Projection Discriminator"), which judges an image as a member of a given class.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from models.generators import check_class_labels, init_weights
from models.norms import InstanceNorm
from models.sizes import patch_size_problem  # noqa: F401 - re-exported


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) [, (B,) labels] -> (B, 1, H', W') real/fake logits, one per patch.

    Layers: a 4x4 stride-2 conv, n_layers - 1 more 4x4 stride-2 convs with instance norm (each
    halves the map), a 4x4 stride-1 conv with instance norm and the 4x4 stride-1 logit conv (each
    takes 1 px off). `patch_size_problem` says which input sizes that leaves room for.

    spectral_norm=True divides every conv's weight by its largest singular value (estimated by
    one power iteration per training forward), which bounds each layer's Lipschitz constant.

    num_classes > 0 makes it a projection discriminator: with phi(x) the (B, F, h, w) input of
    the logit conv and e = embed(y) the (F,) embedding of the row's label, every logit gets
    <e, phi(x)> added, averaged over the same 4x4 window (zero padding included) that the
    logit conv reads. That is the paper's y^T V phi(x) with the patch in place of the whole
    image: equivalently, the logit conv gains a class-dependent kernel equal to e / 16 at every
    tap, so the output keeps its (B, 1, h - 1, w - 1) shape. Label -1 ("unknown") adds nothing:
    such rows get only the unconditional logits, as with labels=None.

    With spectral_norm=False and num_classes=0 the state dict is the same as before either existed.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, *, spectral_norm: bool = False, num_classes: int = 0):
        super().__init__()
        if in_channels < 1 or ndf < 1 or n_layers < 1 or num_classes < 0:
            raise ValueError(
                f"PatchDiscriminator needs positive in_channels, ndf and n_layers and num_classes >= 0, got "
                f"in_channels={in_channels}, ndf={ndf}, n_layers={n_layers}, num_classes={num_classes}"
            )
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers):
            prev, mult = mult, min(2**i, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1),
                InstanceNorm(ndf * mult), nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1),
            InstanceNorm(ndf * mult), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.net = nn.Sequential(*layers)
        self.num_classes = num_classes
        self.features = ndf * mult  # F, the channels of phi(x)
        if num_classes:
            self.embed = nn.Embedding(num_classes, self.features)
        init_weights(self)
        if num_classes:
            # Glorot uniform, as the reference implementation initialises V (nn.Embedding's
            # default N(0, 1) would let the projection term swamp the logits at the start).
            nn.init.xavier_uniform_(self.embed.weight)
        if spectral_norm:
            # After init_weights: the parametrization keeps the initialised weight as its original.
            # Miyato et al.'s SN discriminators have no other normalisation layer (and also
            # spectrally normalise the projection embedding); here the instance norms stay, so
            # spectral_norm=True changes the weights' scale only and the model stays comparable
            # with the plain one, and the embedding is left as is.
            for m in self.net:
                if isinstance(m, nn.Conv2d):
                    _spectral_norm(m)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            return self.net(x)
        if not self.num_classes:
            raise ValueError("this PatchDiscriminator was built with num_classes=0, so it takes no labels")
        check_class_labels(labels, x.shape[0], self.num_classes, "PatchDiscriminator")
        phi = self.net[:-1](x)  # (B, F, h, w)
        last = self.net[-1]
        e = self.embed(labels.clamp(min=0).long()) * (labels >= 0).unsqueeze(1).to(phi.dtype)  # (B, F); unknown rows 0
        proj = (phi * e[:, :, None, None]).sum(dim=1, keepdim=True)  # (B, 1, h, w)
        proj = F.avg_pool2d(proj, last.kernel_size, stride=last.stride, padding=last.padding)  # (B, 1, h-1, w-1)
        return last(phi) + proj
