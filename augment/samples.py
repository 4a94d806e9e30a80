"""Sample grids: rows of images side by side, upscaled so small images are visible."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from augment.images import save_png, to_uint8
from augment.io import atomic_path


def grid(rows: list[torch.Tensor], *, min_cell: int = 64, gap: int = 2) -> np.ndarray:
    """rows: R tensors (N, C, H, W) in [-1, 1] or uint8 -> one (H', W', C) uint8 image, R rows of N cells."""
    n, c, h, w = rows[0].shape
    scale = max(1, -(-min_cell // h))  # ceil: nearest-neighbour upscale keeps pixels honest
    cell_h, cell_w = h * scale, w * scale
    out = np.full((len(rows) * (cell_h + gap) - gap, n * (cell_w + gap) - gap, c), 255, np.uint8)
    for r, row in enumerate(rows):
        imgs = to_uint8(row).repeat(scale, axis=1).repeat(scale, axis=2)  # (N, cell_h, cell_w, C)
        for i, img in enumerate(imgs):
            y, x = r * (cell_h + gap), i * (cell_w + gap)
            out[y : y + cell_h, x : x + cell_w] = img
    return out


def save_grid(rows: list[torch.Tensor], path: str | Path, **kwargs) -> None:
    with atomic_path(path) as tmp:
        save_png(grid(rows, **kwargs), tmp)
