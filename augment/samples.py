"""Sample grids: rows of images side by side, upscaled so small images are visible, each row named
in a white column on its left, so that a sample PNG opened by itself says what its rows are."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from augment.images import save_png, to_uint8
from augment.io import atomic_path

# The rows of the grid a GAN stage writes (artifacts/gan/<gan>/<seed>/samples.png, train_gan)
GAN_SAMPLE_ROWS = ("source", "translated", "reconstructed")


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


def with_row_labels(image: np.ndarray, labels: list[str] | tuple[str, ...], *, gap: int = 2, pad: int = 4) -> np.ndarray:
    """`image`, a grid of len(labels) rows of one height `gap` px apart (H, W, C uint8), with a white
    column on its left that names each row in black."""
    from PIL import Image, ImageDraw, ImageFont

    height, _, channels = image.shape
    if not labels or (height + gap) % len(labels):
        raise ValueError(f"{len(labels)} row labels for a grid {height} px high with {gap} px between rows")
    row_h = (height + gap) // len(labels) - gap
    font = ImageFont.load_default()  # Pillow's own font: nothing is read from elsewhere
    boxes = [ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font) for text in labels]
    column = Image.new("L", (max(box[2] for box in boxes) + 2 * pad, height), 255)
    draw = ImageDraw.Draw(column)
    for r, (text, (_, top, _, bottom)) in enumerate(zip(labels, boxes)):
        draw.text((pad, r * (row_h + gap) + (row_h - bottom - top) // 2), text, fill=0, font=font)
    return np.concatenate([np.asarray(column)[:, :, None].repeat(channels, axis=2), image], axis=1)


def save_grid(rows: list[torch.Tensor], path: str | Path, *, labels: list[str] | tuple[str, ...] | None = None, **kwargs) -> None:
    """`grid(rows)` as a PNG; with `labels`, each row named by its label (`with_row_labels`)."""
    image = grid(rows, **kwargs)
    with atomic_path(path) as tmp:
        save_png(image if labels is None else with_row_labels(image, labels, gap=kwargs.get("gap", 2)), tmp)
