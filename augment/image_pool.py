"""History of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN sec. 4)."""
from __future__ import annotations

import torch


class ImagePool:
    """Returns, per image, either the new fake or (with p=0.5, once full) one of `size` older fakes.

    Uses its own seeded generator so that training is reproducible.
    """

    def __init__(self, *, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self._rng = torch.Generator().manual_seed(seed)

    def __repr__(self) -> str:
        return f"ImagePool(size={self.size}, held={len(self.images)})"

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch.detach()
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self._rng) < 0.5:
                j = int(torch.randint(self.size, (), generator=self._rng))
                out.append(self.images[j].clone())
                self.images[j] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)
