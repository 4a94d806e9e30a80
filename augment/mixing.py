"""Mixing policies: how each classifier training batch is composed from real and synthetic sets."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from augment.arms import batch_rows
from augment.images import as_float


@dataclass(frozen=True)
class LabeledImages:
    """(N, C, H, W) images with (N,) int64 labels: float in [-1, 1], or uint8 0..255 as stored (a
    quarter of the memory; `MixedBatches` and `predict` convert a batch at a time, to the same values)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


class MixedBatches:
    """Draws batches whose rows come from several labeled sets in fixed proportions.

    `parts` maps a name to (set, fraction); fractions must sum to 1. Each batch takes
    round(fraction * batch_size) rows from each set (the largest part absorbs rounding), sampled
    with replacement by a seeded generator, so `synthetic_fraction` holds batch by batch and not
    only on average. `transforms` optionally maps a part name to a function applied to its rows.
    Batches are float in [-1, 1] whether a set is stored as float or uint8.
    """

    def __init__(
        self,
        *,
        parts: dict[str, tuple[LabeledImages, float]],
        batch_size: int,
        seed: int,
        transforms: dict[str, Callable[[torch.Tensor, np.random.Generator], torch.Tensor]] | None = None,
    ):
        parts = {name: (data, frac) for name, (data, frac) in parts.items() if frac > 0}
        if not parts:
            raise ValueError("MixedBatches needs at least one part with a positive fraction")
        total = sum(frac for _, frac in parts.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"MixedBatches fractions must sum to 1, got {total:.4f} from { {n: f for n, (_, f) in parts.items()} }")
        for name, (data, _) in parts.items():
            if len(data) == 0:
                raise ValueError(f"MixedBatches part {name!r} is empty")
        self.parts = parts
        self.batch_size = batch_size
        self.transforms = transforms or {}
        self.counts = batch_rows({name: frac for name, (_, frac) in parts.items()}, batch_size)
        self._torch_rng = torch.Generator().manual_seed(seed)
        self._np_rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        desc = ", ".join(f"{n}={len(d)} x {f:.2f}" for n, (d, f) in self.parts.items())
        tf = f", transforms={list(self.transforms)}" if self.transforms else ""
        return f"MixedBatches({desc}, batch_size={self.batch_size}{tf})"

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for name, (data, _) in self.parts.items():
            n = self.counts[name]
            if n == 0:
                continue
            idx = torch.randint(len(data), (n,), generator=self._torch_rng)
            x = as_float(data.images[idx])
            if name in self.transforms:
                x = self.transforms[name](x, self._np_rng)
            xs.append(x)
            ys.append(data.labels[idx])
        return torch.cat(xs), torch.cat(ys)
