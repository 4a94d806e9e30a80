"""Whether a domain's images are in colour, against what `data.channels` keeps of them.

With `data.channels: 1` every image is read as grey: when colour is the shift between the two
domains (MNIST -> MNIST-M, clear -> sunset), the run then learns and measures another problem than
the user's, and says nothing. With `data.channels: 3` on two grey domains the networks read three
copies of one channel. `prepare` and `check-data` look at a sample of each domain's files and say so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from augment.images import ImageRejected, decode

SAMPLE = 40  # files per domain, evenly spread over its sorted list
# Mean over pixels of (largest channel - smallest channel), in 8-bit levels, above which an image is in
# colour. A grey image stored as RGB gives 0 (a JPEG's chroma noise 1-3); a faded sepia photo about
# 10-15, a street scene 20-60, an MNIST-M digit 60-120.
COLOURFUL = 8.0


def colourfulness(rgb: np.ndarray) -> float:
    """(H, W, 3) uint8 -> mean per-pixel channel spread, in levels."""
    rgb = rgb.astype(np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def colour_shares(paths: dict[str, list[Path]], *, size: int = 32, sample: int = SAMPLE) -> dict[str, tuple[int, int]]:
    """domain -> (files in colour, files looked at) of an even sample of its readable files."""
    out = {}
    for domain, files in paths.items():
        files = sorted(files)
        picked = [files[i] for i in np.linspace(0, len(files) - 1, min(sample, len(files))).round().astype(int)] if files else []
        scores = []
        for path in picked:
            try:
                scores.append(colourfulness(decode(path, size=size, channels=3)[0]))
            except (ImageRejected, OSError):  # gone since it was read: the sample is a little smaller
                continue
        out[domain] = (sum(s > COLOURFUL for s in scores), len(scores))
    return out


def colour_notes(shares: dict[str, tuple[int, int]], channels: int) -> list[str]:
    """What to tell the user of `colour_shares` under `data.channels`."""
    if channels == 1:
        return [f"{domain}: {k} of {n} sampled images are in colour, and data.channels is 1: the run reads every image as grey, "
                "so colour is no part of the shift the GANs learn or of what the classifiers see; -S data.channels=3 keeps it "
                "(presets/rgb32.yaml)" for domain, (k, n) in shares.items() if n and k * 2 >= n]
    looked = [n for _, n in shares.values()]
    if looked and all(looked) and not any(k for k, _ in shares.values()):
        return [f"every sampled image of {' and '.join(shares)} is grey, and data.channels is 3: the networks read three "
                "copies of one channel; -S data.channels=1 reads the same images at a third of the input"]
    return []
