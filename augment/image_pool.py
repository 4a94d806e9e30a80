"""History of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN sec. 4)."""
from __future__ import annotations

import torch


class ImagePool:
    """Returns, per image, either the new fake or (with p=0.5, once full) one of `size` older fakes.

    A class-conditional discriminator must see each old fake with the label it was made for, so
    `query(images, labels)` keeps (image, label) pairs together. Uses its own seeded generator so
    that training is reproducible.
    """

    def __init__(self, *, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []  # 0-dim int64, parallel to images (label queries only)
        self._rng = torch.Generator().manual_seed(seed)

    def __repr__(self) -> str:
        return f"ImagePool(size={self.size}, held={len(self.images)})"

    def state(self) -> dict:
        return {"images": list(self.images), "labels": list(self.labels), "rng": self._rng.get_state()}

    def load_state(self, state: dict, device: torch.device | str) -> None:
        """Restore a `state()`, with every held tensor on `device` (checkpoints are loaded on the CPU)."""
        self.images = [t.to(device) for t in state["images"]]
        self.labels = [t.to(device) for t in state["labels"]]
        self._rng.set_state(state["rng"])

    def query(self, batch: torch.Tensor, labels: torch.Tensor | None = None):
        """(B, C, H, W) fakes -> (B, C, H, W) for the discriminator; with (B,) labels, (images, labels)."""
        if self.size == 0:
            return batch.detach() if labels is None else (batch.detach(), labels)
        with_labels = labels is not None
        out, out_labels = [], []
        for k, image in enumerate(batch.detach()):
            label = labels[k] if with_labels else None
            if len(self.images) < self.size:
                self.images.append(image.clone())
                if with_labels:
                    self.labels.append(label.clone())
            elif torch.rand((), generator=self._rng) < 0.5:
                j = int(torch.randint(self.size, (), generator=self._rng))
                old = self.images[j].clone()
                self.images[j] = image.clone()
                if with_labels:
                    old_label, self.labels[j] = self.labels[j].clone(), label.clone()
                image, label = old, (old_label if with_labels else None)
            out.append(image)
            out_labels.append(label)
        if not with_labels:
            return torch.stack(out)
        return torch.stack(out), torch.stack(out_labels)
