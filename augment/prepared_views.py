"""What each training stage reads of `data/prepared`, pinned: `data/prepared/views/<consumer>.json`.

`prepare` writes one file per consumer with the sha256 of the rows it reads (their paths, labels and
pixels, in manifest order) and of the dataset facts it uses (classes, channels, image size). The
`train_gan`, `synthesize` and `train_classifier` stages depend on their file instead of the whole
folder, so a change that does not touch what they read (target test images added, as the reports
advise for a small test set; a file rejected or a duplicate found) leaves the GANs, their
translations and the classifiers as they are, instead of training them again to the same bytes.
The test splits are read by `evaluate` alone, which predicts them with every classifier.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from augment.io import write_json

VIEWS_DIR = "views"
# consumer -> the (role, split) rows it reads: the GAN learns from both train splits and draws its
# samples from the source test images; synthesize translates the source train images; a classifier
# learns from the source train images and, in the arms that see target labels, the target train ones;
# few_labels picks among the labeled target train images.
VIEWS = {
    "gan": (("source", "train"), ("target", "train"), ("source", "test")),
    "synthesize": (("source", "train"),),
    "classifier": (("source", "train"), ("target", "train")),
    "few_labels": (("target", "train"),),  # picks the few labeled target train images
}


def view_file(prepared: str | Path, consumer: str) -> Path:
    return Path(prepared) / VIEWS_DIR / f"{consumer}.json"


def write_views(prepared: Path, manifest: pd.DataFrame, pixels: np.ndarray, info: dict) -> None:
    """`prepared/views/<consumer>.json` for every consumer of VIEWS; each split's rows are read and
    hashed once, whichever views hold it."""
    facts = json.dumps({k: info[k] for k in ("classes", "channels", "image_size")}, sort_keys=True).encode()
    splits = {part: _split_digest(manifest, pixels, *part) for part in dict.fromkeys(p for parts in VIEWS.values() for p in parts)}
    for consumer, parts in VIEWS.items():
        h = hashlib.sha256(facts)
        for part in parts:
            h.update(f"{'/'.join(part)}:{splits[part][0]}:{splits[part][1]}\n".encode())
        write_json({"reads": {"/".join(part): splits[part][0] for part in parts}, "sha256": h.hexdigest()}, view_file(prepared, consumer))


def _split_digest(manifest: pd.DataFrame, pixels: np.ndarray, role: str, split: str) -> tuple[int, str]:
    """The row count and sha256 of one split's paths, labels and pixels, in manifest order."""
    rows = np.flatnonzero(((manifest.role == role) & (manifest.split == split)).to_numpy())
    h = hashlib.sha256("\n".join(manifest.path.iloc[rows]).encode("utf-8", "surrogateescape"))
    h.update(manifest.label_index.iloc[rows].to_numpy(dtype=np.int64).tobytes())
    for start in range(0, len(rows), 4096):  # a memory map read a block at a time
        h.update(np.ascontiguousarray(pixels[rows[start:start + 4096]]).tobytes())
    return len(rows), h.hexdigest()
