"""What each GAN stage reads of `data/prepared`, pinned: `data/prepared/views/<consumer>.json`.

`prepare` writes one file per consumer with the sha256 of the rows it reads (their paths, labels and
pixels, in manifest order) and of the dataset facts it uses (classes, channels, image size). The
`train_gan` and `synthesize` stages depend on their file instead of the whole folder, so a change
that does not touch what they read (target test images added, as the reports advise for a small
test set) leaves the GANs and their translations as they are, instead of training every GAN again
to the same bytes. The classifiers read every split (they predict on the test sets), so they keep
depending on the folder.
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
# samples from the source test images; synthesize translates the source train images.
VIEWS = {
    "gan": (("source", "train"), ("target", "train"), ("source", "test")),
    "synthesize": (("source", "train"),),
}


def view_file(prepared: str | Path, consumer: str) -> Path:
    return Path(prepared) / VIEWS_DIR / f"{consumer}.json"


def write_views(prepared: Path, manifest: pd.DataFrame, pixels: np.ndarray, info: dict) -> None:
    """`prepared/views/<consumer>.json` for every consumer of VIEWS."""
    facts = json.dumps({k: info[k] for k in ("classes", "channels", "image_size")}, sort_keys=True).encode()
    for consumer, splits in VIEWS.items():
        h = hashlib.sha256(facts)
        counts = {}
        for role, split in splits:
            rows = np.flatnonzero(((manifest.role == role) & (manifest.split == split)).to_numpy())
            counts[f"{role}/{split}"] = len(rows)
            h.update(f"{role}/{split}:{len(rows)}\n".encode())
            h.update("\n".join(manifest.path.iloc[rows]).encode("utf-8", "surrogateescape"))
            h.update(manifest.label_index.iloc[rows].to_numpy(dtype=np.int64).tobytes())
            for start in range(0, len(rows), 4096):  # a memory map read a block at a time
                h.update(np.ascontiguousarray(pixels[rows[start:start + 4096]]).tobytes())
        write_json({"reads": counts, "sha256": h.hexdigest()}, view_file(prepared, consumer))
