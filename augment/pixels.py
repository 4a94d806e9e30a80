"""The packed image set: `pixels.npy`, one uint8 (N, H, W, C) array whose row i is manifest row i.

`prepare` and `synthesize` write their images once into `pixels.npy`; every stage reads that one
file (memory-mapped) instead of decoding thousands of PNGs, and DVC hashes one file per folder
instead of one per image. The PNG copies under `images/` are for people to look at: `.dvcignore`
keeps them out of what DVC hashes, so a `dvc checkout` or `dvc pull` brings back `pixels.npy` but not
them; `restore_pngs` (CLI: `domain-augment pngs`) rebuilds them from it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from augment.images import save_png

PIXELS = "pixels.npy"


class PixelWriter:
    """Append (H, W, C) uint8 images one at a time, without holding them all in memory;
    `close()` writes `<folder>/pixels.npy` and returns how many were written."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / PIXELS
        self.shape: tuple[int, ...] | None = None
        self.count = 0
        self._raw = tempfile.TemporaryFile(dir=folder)

    def append(self, image: np.ndarray) -> int:
        """Store one image; returns its row (the manifest row it must match)."""
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"pixels: expected an (H, W, C) uint8 image, got {image.dtype} {image.shape}")
        if self.shape is None:
            self.shape = image.shape
        elif image.shape != self.shape:
            raise ValueError(f"pixels: image {self.count} is {image.shape}, the earlier ones {self.shape}")
        self._raw.write(np.ascontiguousarray(image).tobytes())
        self.count += 1
        return self.count - 1

    def close(self, empty_shape: tuple[int, int, int]) -> int:
        shape = (self.count, *(self.shape or empty_shape))
        with open(self.path, "wb") as out:
            np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": shape})
            self._raw.seek(0)
            shutil.copyfileobj(self._raw, out, 1 << 22)
        self._raw.close()
        return self.count


def write_pixels(images: np.ndarray, folder: Path) -> None:
    """All images at once: (N, H, W, C) uint8 -> `<folder>/pixels.npy`."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"pixels: expected (N, H, W, C) uint8, got {images.dtype} {images.shape}")
    np.save(Path(folder) / PIXELS, np.ascontiguousarray(images), allow_pickle=False)


def read_pixels(folder: Path, rows: int) -> np.ndarray:
    """`<folder>/pixels.npy`, memory-mapped; refuses a file whose row count is not the manifest's."""
    path = Path(folder) / PIXELS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; rerun the stage that writes {folder} (dvc repro)")
    try:
        pixels = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:  # EOFError: an empty file
        raise ValueError(f"{path}: not a readable image array ({exc}); rerun the stage that writes {folder}") from None
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or len(pixels) != rows:
        raise ValueError(f"{path}: holds {pixels.dtype} {pixels.shape}, but {folder}/manifest.csv lists {rows} images; "
                         f"the folder is half from another run: rerun the stage that writes it (dvc repro -f)")
    return pixels


def write_pngs(folder: Path, manifest: pd.DataFrame) -> int:
    """The PNG copy of every manifest row at its `path` (under `folder`), from `pixels.npy`."""
    folder = Path(folder)
    pixels = read_pixels(folder, len(manifest))
    for i, rel in enumerate(manifest.path):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(np.asarray(pixels[i]), path)
    return len(manifest)


def restore_pngs(folder: Path) -> int:
    """Replace `<folder>/images/` with PNGs of what `pixels.npy` holds now (none left from another run)."""
    folder = Path(folder)
    manifest_path = folder / "manifest.csv"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; not a prepared or synthetic folder")
    try:
        manifest = pd.read_csv(manifest_path, usecols=["path"], keep_default_na=False)
    except ValueError as exc:  # not a manifest: no `path` column
        raise ValueError(f"{manifest_path}: not a manifest ({exc}); not a prepared or synthetic folder") from None
    # a path that leaves images/ (`../x.png`, `/tmp/x.png`: a manifest edited or from elsewhere) would be written there
    outside = next((rel for rel in manifest.path if os.path.isabs(rel) or not os.path.normpath(rel).startswith("images" + os.sep)), None)
    if outside is not None:
        raise ValueError(f"{manifest_path}: path {outside!r} is not under images/; PNGs are written there only, nothing was changed")
    read_pixels(folder, len(manifest))  # before anything is removed: the PNGs may be the only readable copy left
    shutil.rmtree(folder / "images", ignore_errors=True)
    return write_pngs(folder, manifest)
