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
        self._held: torch.Tensor | None = None  # (n, C, H, W), n <= size, on the training device
        self._held_labels: torch.Tensor | None = None  # (n,) int64, for label queries
        self._rng = torch.Generator().manual_seed(seed)

    def __repr__(self) -> str:
        return f"ImagePool(size={self.size}, held={len(self)})"

    def __len__(self) -> int:
        return 0 if self._held is None else len(self._held)

    @property
    def images(self) -> list[torch.Tensor]:
        return [] if self._held is None else list(self._held.unbind(0))

    @property
    def labels(self) -> list[torch.Tensor]:
        return [] if self._held_labels is None else list(self._held_labels.unbind(0))

    def state(self) -> dict:
        return {"images": self.images, "labels": self.labels, "rng": self._rng.get_state()}

    def load_state(self, state: dict, device: torch.device | str) -> None:
        """Restore a `state()`, with every held tensor on `device` (checkpoints are loaded on the CPU)."""
        self._held = torch.stack(state["images"]).to(device) if state["images"] else None
        self._held_labels = torch.stack(state["labels"]).to(device) if state["labels"] else None
        self._rng.set_state(state["rng"])

    def query(self, batch: torch.Tensor, labels: torch.Tensor | None = None):
        """(B, C, H, W) fakes -> (B, C, H, W) for the discriminator; with (B,) labels, (images, labels).

        The choices are made image by image on the CPU (the reference's rule, same random draws);
        the images move in two gathers, not one small copy per image, which on a GPU costs
        a kernel launch each.
        """
        if self.size == 0:
            return batch.detach() if labels is None else (batch.detach(), labels)
        batch = batch.detach()
        held = len(self)
        # Rows of `pool` = held images, then this batch. `slots[j]` is the row slot j holds after
        # the query, `picked[k]` the row returned for image k.
        slots, picked = list(range(held)), []
        for k in range(len(batch)):
            row = held + k
            if len(slots) < self.size:
                slots.append(row)
                picked.append(row)
            elif torch.rand((), generator=self._rng) < 0.5:
                j = int(torch.randint(self.size, (), generator=self._rng))
                picked.append(slots[j])
                slots[j] = row
            else:
                picked.append(row)
        pool = batch if self._held is None else torch.cat([self._held.to(batch.dtype), batch])
        picked_t, slots_t = torch.tensor(picked), torch.tensor(slots)
        if pool.is_cuda:  # pinned, so the index copies do not wait for the GPU
            picked_t, slots_t = picked_t.pin_memory(), slots_t.pin_memory()
        picked_t, slots_t = picked_t.to(pool.device, non_blocking=True), slots_t.to(pool.device, non_blocking=True)
        out = pool.index_select(0, picked_t)
        self._held = pool.index_select(0, slots_t)
        if labels is None:
            return out
        all_labels = labels if self._held_labels is None else torch.cat([self._held_labels, labels])
        self._held_labels = all_labels.index_select(0, slots_t)
        return out, all_labels.index_select(0, picked_t)
