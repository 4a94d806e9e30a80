"""Accuracy, macro-F1 and bootstrap intervals (FID/KID: augment/gan_quality.py, through torchmetrics).

Intervals are percentile bootstraps over both test images and seeds: each replicate resamples
the test images (the same indices for every seed and every arm) and the seeds, so an arm's
interval reflects test-set size and training noise, and `benefit` is paired by image and seed.

When classifier seeds belong to groups (the GAN seed whose images a GAN arm's classifier learned
from), seeds are resampled in two stages: first the groups, with replacement, then each seed
slot from the seeds of one of the drawn groups. A GAN that happened to be good or bad then moves
the interval as much as it can move the answer, instead of counting as a fixed part of the setup.
"""
from __future__ import annotations

import numpy as np

# A target test set (after target_val is held out) below SMALL_TEST images cannot tell the few points
# a benefit is usually worth: a 95% interval on an accuracy near 0.5 is about +-1/sqrt(n) wide, +-0.10
# at 100 images. The reports warn below it and the answer calls itself a hint.
SMALL_TEST = 100


def macro_f1(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> float:
    """Mean F1 over the classes present in `labels` (classes never seen nor predicted don't count)."""
    tp = np.bincount(labels[labels == preds], minlength=num_classes).astype(float)
    pred_n = np.bincount(preds, minlength=num_classes).astype(float)
    true_n = np.bincount(labels, minlength=num_classes).astype(float)
    present = true_n > 0
    denom = pred_n + true_n
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def _replicates(n_items: int, n_seeds: int, samples: int, seed: int, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(samples, n_items) image indices and (samples, n_seeds) seed (row) indices per replicate.

    `groups` (n_seeds,): the group of each seed row; with two or more groups the rows are drawn
    in two stages (groups, then rows within the drawn groups), see the module docstring."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, n_items, (samples, n_items))
    if groups is None or len(np.unique(groups)) < 2:
        return items, rng.integers(0, n_seeds, (samples, n_seeds))
    groups = np.asarray(groups)
    if len(groups) != n_seeds:
        raise ValueError(f"groups has {len(groups)} entries for {n_seeds} seeds")
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    sizes = np.array([len(m) for m in members])
    padded = np.zeros((len(members), sizes.max()), dtype=int)
    for g, m in enumerate(members):
        padded[g, : len(m)] = m
    drawn = rng.integers(0, len(members), (samples, len(members)))  # stage 1: groups, with replacement
    slot_group = np.take_along_axis(drawn, rng.integers(0, len(members), (samples, n_seeds)), axis=1)
    within = (rng.random((samples, n_seeds)) * sizes[slot_group]).astype(int)  # stage 2: a seed of that group
    return items, padded[slot_group, within]


def summarize(
    preds: np.ndarray, labels: np.ndarray, *, num_classes: int, samples: int = 2000, seed: int = 0, with_f1: bool = True,
    groups: np.ndarray | None = None,
) -> dict:
    """preds (S seeds, N images), labels (N,) -> {"accuracy": {mean, ci95, per_seed}, "macro_f1": {...}}.
    `groups` (S,): each seed's GAN seed, resampled too (see `_replicates`)."""
    correct = (preds == labels[None, :]).astype(float)  # (S, N)
    items, seeds = _replicates(correct.shape[1], correct.shape[0], samples, seed, groups)
    acc_boot = np.array([correct[s][:, i].mean() for i, s in zip(items, seeds)])
    out = {"accuracy": _stat(correct.mean(1), acc_boot)}
    if with_f1:
        per_seed = np.array([macro_f1(labels, p, num_classes) for p in preds])
        f1_boot = np.array([
            np.mean([macro_f1(labels[i], preds[k][i], num_classes) for k in s]) for i, s in zip(items, seeds)
        ])
        out["macro_f1"] = _stat(per_seed, f1_boot)
    return out


def paired_delta(preds_arm: np.ndarray, preds_base: np.ndarray, labels: np.ndarray, *, samples: int = 2000, seed: int = 0,
                 groups: np.ndarray | None = None) -> dict:
    """Accuracy of arm minus baseline, paired by seed (row) and test image (column); `groups` as in `summarize`."""
    if preds_arm.shape != preds_base.shape:
        raise ValueError(f"paired delta needs the same seeds and images, got {preds_arm.shape} and {preds_base.shape}")
    diff = (preds_arm == labels[None, :]).astype(float) - (preds_base == labels[None, :]).astype(float)
    items, seeds = _replicates(diff.shape[1], diff.shape[0], samples, seed, groups)
    boot = np.array([diff[s][:, i].mean() for i, s in zip(items, seeds)])
    return {"mean": float(diff.mean()), "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}


def majority_share(preds: np.ndarray) -> float:
    """preds (S seeds, N images) -> the share of each seed's most frequent predicted class, mean over seeds.
    Near 1 when a classifier reads (nearly) every image as one class, whatever its label."""
    return float(np.mean([np.bincount(p).max() / len(p) for p in preds]))


def majority_class(preds: np.ndarray) -> int:
    """preds (S seeds, N images) -> the class predicted most often over all seeds (the one a lopsided or
    degenerate classifier reads its images as)."""
    return int(np.bincount(preds.ravel()).argmax())


# A class whose test images a classifier reads as one other class this often, while that class's are
# read as the first as often: the two are swapped. A look shift makes one class read as another (a
# target 7 as a 1); both ways at once, for two whole classes, it seldom does: their names are swapped.
SWAPPED = 0.5


def read_shares(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """preds (S seeds, N images), labels (N,) -> (share[c, d]: the share of class c's images read as d
    over all seeds, images of each class in the set)."""
    counts = np.zeros((num_classes, num_classes))
    for p in preds:
        np.add.at(counts, (labels, p), 1)
    rows = counts.sum(1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0), np.bincount(labels, minlength=num_classes)


def read_as_each_other(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> list[tuple[int, int, float, float]]:
    """(c, d, share of c read as d, share of d read as c) for each pair of classes each read as the
    other for SWAPPED of its images or more, over all seeds (`read_shares`)."""
    share, _ = read_shares(preds, labels, num_classes)
    return [(c, d, float(share[c, d]), float(share[d, c])) for c in range(num_classes) for d in range(c + 1, num_classes)
            if share[c, d] >= SWAPPED and share[d, c] >= SWAPPED]


# Fewer test images of a class than this, and a share of them read as another is no sign of anything.
READ_AS_ANOTHER_IMAGES = 5


def read_as_another(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> list[tuple[int, int, float]]:
    """(c, d, share of c read as d) for each class of READ_AS_ANOTHER_IMAGES test images or more that
    is read as one other class d for SWAPPED of its images or more, over all seeds. Meant for a
    classifier tested in the domain it learned (source_only on source_test, the oracle on target_test):
    there no change of look explains it, and a train and a test folder that name a class differently do."""
    share, images = read_shares(preds, labels, num_classes)
    return [(c, d, float(share[c, d])) for c in range(num_classes) for d in range(num_classes)
            if c != d and images[c] >= READ_AS_ANOTHER_IMAGES and share[c, d] >= SWAPPED]


def _stat(per_seed: np.ndarray, boot: np.ndarray) -> dict:
    return {
        "mean": float(per_seed.mean()),
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "per_seed": [float(v) for v in per_seed],
    }
