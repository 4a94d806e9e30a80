"""Loading what `prepare` and `synthesize` wrote, as tensors, with label visibility enforced.

Target train labels are read only when asked for: `visible="few"` gives the `few_shot` rows,
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
from PIL import Image

from augment.images import to_tensor
from augment.mixing import LabeledImages


def read_pngs(root: Path, rel_paths) -> torch.Tensor:
    """PNG files (already canonical) -> (N, C, H, W) float in [-1, 1]."""
    arrays = []
    for rel in rel_paths:
        with Image.open(root / rel) as img:
            a = np.asarray(img, dtype=np.uint8)
        arrays.append(a[:, :, None] if a.ndim == 2 else a)
    if not arrays:
        raise ValueError(f"{root}: no images to read")
    return to_tensor(np.stack(arrays))


@dataclass
class PreparedData:
    root: Path
    manifest: pd.DataFrame
    info: dict

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def channels(self) -> int:
        return int(self.info["channels"])

    def rows(self, role: str, split: str) -> pd.DataFrame:
        return self.manifest[(self.manifest.role == role) & (self.manifest.split == split)]

    def images(self, role: str, split: str) -> torch.Tensor:
        """All images of a split, labels or not: what unpaired GAN training uses."""
        return read_pngs(self.root, self.rows(role, split).path)

    def visible_target_labels(self, visible: Literal["none", "few"]) -> torch.Tensor:
        """(M,) labels aligned with `images("target", "train")`: the few-shot labels when `visible`
        is "few", -1 for every other image (and for all of them when "none")."""
        rows = self.rows("target", "train")
        shown = rows.few_shot & (rows.label_index >= 0) & (visible == "few")
        return torch.tensor(np.where(shown, rows.label_index, -1), dtype=torch.long)

    def labeled(self, role: str, split: str, *, visible: Literal["all", "few"] = "all") -> tuple[LabeledImages, pd.DataFrame]:
        rows = self.rows(role, split)
        rows = rows[rows.label_index >= 0]
        if visible == "few":
            rows = rows[rows.few_shot]
        if rows.empty:
            return LabeledImages(torch.zeros(0), torch.zeros(0, dtype=torch.long)), rows
        x = read_pngs(self.root, rows.path)
        return LabeledImages(x, torch.tensor(rows.label_index.to_numpy(), dtype=torch.long)), rows


def load_prepared(root: str | Path) -> PreparedData:
    root = Path(root)
    manifest_path, info_path = root / "manifest.csv", root / "dataset.json"
    for p in (manifest_path, info_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; run the prepare stage first (dvc repro prepare)")
    manifest = pd.read_csv(manifest_path, dtype={"label": str}, keep_default_na=False)
    manifest["few_shot"] = manifest["few_shot"].astype(str).str.lower() == "true"
    return PreparedData(root, manifest, json.loads(info_path.read_text()))


def load_synthetic(root: str | Path) -> tuple[LabeledImages, pd.DataFrame]:
    root = Path(root)
    manifest_path = root / "manifest.csv"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; run the synthesize stage first")
    rows = pd.read_csv(manifest_path, dtype={"label": str}, keep_default_na=False)
    x = read_pngs(root, rows.path)
    return LabeledImages(x, torch.tensor(rows.label_index.to_numpy(), dtype=torch.long)), rows
