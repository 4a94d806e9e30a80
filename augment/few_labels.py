"""Which labeled target train images the few-label consumers may see, chosen apart from `prepare`.

`data.target_labels_per_class` images per class are picked once (seeded by `data.split_seed`) and
written as one small file per consumer: `gan-<gan>.csv` for each GAN kind and `arm-<arm>.csv` for
each arm. A consumer that may see them (the conditional GAN, `target_few`) gets the chosen rows,
every other one a file with the header alone. Each GAN stage depends on its own file (each
classifier on its arm's pin of it, augment/arm_inputs.py), so changing
`data.target_labels_per_class` re-runs `prepare` never, and of the GANs only those that read labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augment.arms import ARMS, GANS
from augment.io import write_csv

COLUMNS = ["path", "label_index"]  # manifest path of a visible labeled target train image, its class


def choose_few(manifest: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """`per_class` labeled target train rows per class (fewer where a class has fewer), same for every consumer."""
    pool = manifest[(manifest.role == "target") & (manifest.split == "train") & (manifest.label_index >= 0)]
    rng = np.random.default_rng(seed)
    chosen = []
    for _, rows in pool.groupby("label_index"):
        chosen += list(rng.permutation(rows.index.to_numpy())[:per_class])
    return manifest.loc[sorted(chosen), COLUMNS].reset_index(drop=True)


def consumer_file(folder: str | Path, *, gan: str | None = None, arm: str | None = None) -> Path:
    if (gan is None) == (arm is None):
        raise ValueError("name exactly one consumer: gan=... or arm=...")
    return Path(folder) / (f"gan-{gan}.csv" if gan else f"arm-{arm}.csv")


def write_consumer_files(manifest: pd.DataFrame, per_class: int, seed: int, out: Path, *, gans_that_read: set[str]) -> pd.DataFrame:
    """One file per GAN kind and per arm under `out`; returns the chosen rows."""
    few = choose_few(manifest, per_class, seed)
    none = pd.DataFrame(columns=COLUMNS)
    for gan in GANS:
        write_csv(few if gan in gans_that_read else none, consumer_file(out, gan=gan))
    for arm in ARMS.values():
        write_csv(few if arm.target_labels == "few" else none, consumer_file(out, arm=arm.name))
    return few


def read_visible(path: str | Path) -> set[str]:
    """The manifest paths a consumer's file shows (empty for a consumer that sees none)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run the few_labels stage first (dvc repro few_labels)")
    return set(pd.read_csv(path, usecols=["path"], keep_default_na=False).path)
