"""A labeled target validation split, held out of the reported target test set.

Choosing settings (a `dvc exp` sweep of `mix.synthetic_fraction`, a GAN option, the arm to ship)
on the same images that report the winner's score makes that score optimistic. When the target
test split is labeled, `evaluate.validation_fraction` of it (stratified by class, drawn with
`evaluate.validation_seed`, the same images in every run) becomes `target_val`: sweeps and any
choice of settings read it, and `target_test` is reported on the rest only. The split happens in
`evaluate`, on predictions every classifier already made for the whole target test split, so
changing it re-runs nothing but `evaluate`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

VAL_SET = "target_val"


def validation_paths(rows: pd.DataFrame, fraction: float, seed: int) -> set[str]:
    """Paths of the validation images among target test `rows` (columns path, label_index):
    round(fraction * n) of each class's n images, at least one where the class has two or more,
    never all of a class."""
    if fraction <= 0:
        return set()
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for _, group in sorted(rows.groupby("label_index"), key=lambda kv: kv[0]):
        paths = np.sort(group.path.to_numpy())
        k = validation_count(len(paths), fraction)
        chosen.extend(rng.choice(paths, size=k, replace=False).tolist() if k else [])
    return set(chosen)


def validation_count(n: int, fraction: float) -> int:
    """How many of a class's n target test images `validation_paths` holds out as target_val."""
    if fraction <= 0 or n < 2:  # a class with no image, or one, keeps it for target_test
        return 0
    return min(n - 1, max(1, int(round(fraction * n))))


def hold_out(frame: pd.DataFrame, paths: set[str]) -> pd.DataFrame:
    """A predictions frame with the target test rows of `paths` moved to eval_set target_val."""
    moved = (frame.eval_set == "target_test") & frame.path.isin(paths)
    return frame.assign(eval_set=np.where(moved, VAL_SET, frame.eval_set))
