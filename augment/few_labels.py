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
from augment.contract import class_names, listed_classes
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


def _labeled_target_train(manifest: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The labeled target train rows, and every class name in label order."""
    labeled = manifest[manifest.label_index >= 0]
    classes = list(labeled.sort_values("label_index", kind="stable").label.drop_duplicates())
    return labeled[(labeled.role == "target") & (labeled.split == "train")], classes


def _per_class(rows: pd.DataFrame, classes: list[str]) -> dict[str, int]:
    counts = rows.label.value_counts()
    return {c: int(counts.get(c, 0)) for c in classes}


def labeled_target_train_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """{class: its labeled target train images}, every class: what the oracle learns from."""
    pool, classes = _labeled_target_train(manifest)
    return _per_class(pool, classes)


def few_label_counts(manifest: pd.DataFrame) -> dict:
    """What a consumer really saw, from a manifest with its `few_shot` column (augment/dataset.py):
    {"used_per_class": {class: n}, "available_per_class": {class: its labeled target train images}}."""
    pool, classes = _labeled_target_train(manifest)
    return {"used_per_class": _per_class(pool[pool.few_shot], classes), "available_per_class": _per_class(pool, classes)}


def shortfall_warning(manifest: pd.DataFrame, per_class: int, *, consumers: str = "target_few") -> str | None:
    """What to print when a class has no more labeled target train images than `data.target_labels_per_class`
    asks for (choose_few then takes all it has, which is all the oracle sees: with exactly as many too,
    as the reports' "Few labels are all labels" counts); None when none has."""
    pool, classes = _labeled_target_train(manifest)
    if pool.empty or per_class <= 0:  # a flat (unlabeled) target train: nothing was capped, and the arms say they cannot run
        return None
    had = _per_class(pool, classes)
    short = [c for c, n in had.items() if 0 < n <= per_class]
    none = [c for c, n in had.items() if n == 0]
    if not short and not none:
        return None
    where = "every class" if len(short) == len(had) else "class " + listed_classes(short, len(short))
    text = (f"warning: data.target_labels_per_class is {per_class}, but the labeled target train images per class are "
            + ", ".join(f"{c}: {n}" for c, n in zip(class_names(list(had)), had.values())))
    if short:
        text += f"; in {where} {consumers} see all of them, the very labels the oracle sees"
    if none:
        text += (f"; {listed_classes(none)} {'has' if len(none) == 1 else 'have'} none, so neither {consumers} nor the oracle sees a "
                 f"target label of {'it' if len(none) == 1 else 'them'}")
    return text


def capped_classes(few_labels: dict) -> list[str]:
    """The classes whose every labeled target train image the few-label arms saw (`few_labels`: the
    target_few classifier's record, {"used_per_class", "available_per_class"}): there the oracle saw
    no label more. A class with no labeled image at all is no cap."""
    used, available = few_labels["used_per_class"], few_labels["available_per_class"]
    return [c for c in used if available.get(c) and used[c] == available[c]]


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
