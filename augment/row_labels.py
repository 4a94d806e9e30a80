"""Row names written into sample grids, so that a sample PNG opened by itself says what its rows are.

The reports' captions named the rows; `reports/samples/*.png` themselves were rows of pictures only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from augment.images import save_png
from augment.io import atomic_path
from augment.samples import grid

# The rows of the sample grid a GAN stage writes (artifacts/gan/<gan>/<seed>/samples.png, train_gan)
GAN_SAMPLE_ROWS = ["source", "translated", "reconstructed"]


def with_row_labels(image: np.ndarray, labels: list[str], *, gap: int = 2, pad: int = 4) -> np.ndarray:
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


def save_labeled_grid(rows: list[torch.Tensor], labels: list[str], path: str | Path) -> None:
    """`samples.grid` of `rows`, each named by its label, as a PNG."""
    with atomic_path(path) as tmp:
        save_png(with_row_labels(grid(rows), labels), tmp)


def label_rows(png: str | Path, labels: list[str], path: str | Path) -> None:
    """A grid PNG that `samples.save_grid` wrote, written to `path` with its rows named."""
    from PIL import Image

    with Image.open(png) as img:
        image = np.asarray(img if img.mode in ("L", "RGB") else img.convert("RGB"))  # save_png writes L or RGB
    with atomic_path(path) as tmp:
        save_png(with_row_labels(image[:, :, None] if image.ndim == 2 else image, labels), tmp)
