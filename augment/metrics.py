"""Accuracy, macro-F1, bootstrap intervals, and FID/KID on features of an in-pipeline network.

Intervals are percentile bootstraps over both test images and seeds: each replicate resamples
the test images (the same indices for every seed and every arm) and the seeds, so an arm's
interval reflects test-set size and training noise, and `benefit` is paired by image and seed.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg


def macro_f1(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> float:
    """Mean F1 over the classes present in `labels` (classes never seen nor predicted don't count)."""
    tp = np.bincount(labels[labels == preds], minlength=num_classes).astype(float)
    pred_n = np.bincount(preds, minlength=num_classes).astype(float)
    true_n = np.bincount(labels, minlength=num_classes).astype(float)
    present = true_n > 0
    denom = pred_n + true_n
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def _replicates(n_items: int, n_seeds: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_items, (samples, n_items)), rng.integers(0, n_seeds, (samples, n_seeds))


def summarize(
    preds: np.ndarray, labels: np.ndarray, *, num_classes: int, samples: int = 2000, seed: int = 0, with_f1: bool = True
) -> dict:
    """preds (S seeds, N images), labels (N,) -> {"accuracy": {mean, ci95, per_seed}, "macro_f1": {...}}."""
    correct = (preds == labels[None, :]).astype(float)  # (S, N)
    items, seeds = _replicates(correct.shape[1], correct.shape[0], samples, seed)
    acc_boot = np.array([correct[s][:, i].mean() for i, s in zip(items, seeds)])
    out = {"accuracy": _stat(correct.mean(1), acc_boot)}
    if with_f1:
        per_seed = np.array([macro_f1(labels, p, num_classes) for p in preds])
        f1_boot = np.array([
            np.mean([macro_f1(labels[i], preds[k][i], num_classes) for k in s]) for i, s in zip(items, seeds)
        ])
        out["macro_f1"] = _stat(per_seed, f1_boot)
    return out


def paired_delta(preds_arm: np.ndarray, preds_base: np.ndarray, labels: np.ndarray, *, samples: int = 2000, seed: int = 0) -> dict:
    """Accuracy of arm minus baseline, paired by seed (row) and test image (column)."""
    if preds_arm.shape != preds_base.shape:
        raise ValueError(f"paired delta needs the same seeds and images, got {preds_arm.shape} and {preds_base.shape}")
    diff = (preds_arm == labels[None, :]).astype(float) - (preds_base == labels[None, :]).astype(float)
    items, seeds = _replicates(diff.shape[1], diff.shape[0], samples, seed)
    boot = np.array([diff[s][:, i].mean() for i, s in zip(items, seeds)])
    return {"mean": float(diff.mean()), "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}


def _stat(per_seed: np.ndarray, boot: np.ndarray) -> dict:
    return {
        "mean": float(per_seed.mean()),
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "per_seed": [float(v) for v in per_seed],
    }


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID formula (Heusel et al. 2017) on any (N, D) features."""
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    cov_a, cov_b = np.cov(feats_a, rowvar=False), np.cov(feats_b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean)))


def kernel_distance(feats_a: np.ndarray, feats_b: np.ndarray, *, subsets: int = 50, subset_size: int = 500, seed: int = 0) -> float:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel, averaged over subsets."""
    rng = np.random.default_rng(seed)
    d = feats_a.shape[1]
    m = min(subset_size, len(feats_a), len(feats_b))
    vals = []
    for _ in range(subsets):
        x = feats_a[rng.choice(len(feats_a), m, replace=False)]
        y = feats_b[rng.choice(len(feats_b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    return float(np.mean(vals))
