"""Loading what `prepare` and `synthesize` wrote, as tensors, with label visibility enforced.

Target train labels are read only when asked for: `visible="few"` gives the rows the consumer's
few-labels file shows (augment/few_labels.py; none without one),
`visible="all"` every labeled row (the oracle), `visible="none"` images without labels.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from augment.images import to_tensor, to_uint8_tensor
from augment.few_labels import read_visible
from augment.io import read_manifest
from augment.mixing import LabeledImages
from augment.pixels import read_pixels


def _images(pixels: np.ndarray, rows: pd.DataFrame | np.ndarray, *, uint8: bool = False) -> torch.Tensor:
    """The manifest `rows` (their index is their row in pixels.npy), or those row numbers -> (N, C,
    H, W) float in [-1, 1], or with `uint8` the stored 0..255 values (4x smaller, no float copy of the
    whole split: what the training, translation and evaluation stages take, converting a batch at a
    time)."""
    index = rows.index.to_numpy() if isinstance(rows, pd.DataFrame) else rows
    return (to_uint8_tensor if uint8 else to_tensor)(pixels[index])


@dataclass
class PreparedData:
    root: Path
    manifest: pd.DataFrame
    info: dict
    pixels: np.ndarray  # (N, H, W, C) uint8, row i = manifest row i

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def channels(self) -> int:
        return int(self.info["channels"])

    def rows(self, role: str, split: str) -> pd.DataFrame:
        return self.manifest[(self.manifest.role == role) & (self.manifest.split == split)]

    def images(self, role: str, split: str, *, uint8: bool = False) -> torch.Tensor:
        """All images of a split, labels or not: what unpaired GAN training uses."""
        return _images(self.pixels, self.rows(role, split), uint8=uint8)

    def images_at(self, paths: pd.Series, *, uint8: bool = False) -> torch.Tensor:
        """The images of these manifest paths, in their order: the sources of a synthetic set."""
        rows = pd.Index(self.manifest.path).get_indexer(paths)
        if (rows < 0).any():
            raise ValueError(f"{paths[rows < 0].iloc[0]}: not in {self.root / 'manifest.csv'}; re-run synthesize on this prepare")
        return _images(self.pixels, rows, uint8=uint8)

    def visible_target_labels(self, visible: Literal["none", "few"]) -> torch.Tensor:
        """(M,) labels aligned with `images("target", "train")`: the few-shot labels when `visible`
        is "few", -1 for every other image (and for all of them when "none")."""
        rows = self.rows("target", "train")
        shown = rows.few_shot & (rows.label_index >= 0) & (visible == "few")
        return torch.tensor(np.where(shown, rows.label_index, -1), dtype=torch.long)

    def labeled(self, role: str, split: str, *, visible: Literal["all", "few"] = "all", uint8: bool = False) -> tuple[LabeledImages, pd.DataFrame]:
        rows = self.rows(role, split)
        rows = rows[rows.label_index >= 0]
        if visible == "few":
            rows = rows[rows.few_shot]
        if rows.empty:
            return LabeledImages(torch.zeros(0), torch.zeros(0, dtype=torch.long)), rows
        x = _images(self.pixels, rows, uint8=uint8)
        return LabeledImages(x, torch.tensor(rows.label_index.to_numpy(dtype=np.int64))), rows


def load_prepared(root: str | Path, few_labels: str | Path | None = None) -> PreparedData:
    """`few_labels`: the consumer's file from the few_labels stage; without it no target label is "few"."""
    root = Path(root)
    manifest, info_path = read_manifest(root, written_by="prepare"), root / "dataset.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path}: missing; run the prepare stage first (dvc repro prepare)")
    manifest["few_shot"] = manifest.path.isin(read_visible(few_labels)) if few_labels is not None else False
    return PreparedData(root, manifest, json.loads(info_path.read_text()), read_pixels(root, len(manifest)))


def load_synthetic(root: str | Path, *, uint8: bool = False) -> tuple[LabeledImages, pd.DataFrame]:
    root = Path(root)
    rows = read_manifest(root, written_by="synthesize")
    x = _images(read_pixels(root, len(rows)), rows, uint8=uint8)
    return LabeledImages(x, torch.tensor(rows.label_index.to_numpy(dtype=np.int64))), rows
