"""Metrics: macro-F1, bootstrap intervals, paired benefit, FID/KID, and the metrics.json shape."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from augment.metrics import frechet_distance, kernel_distance, macro_f1, paired_delta, summarize
from augment.report import arm_metrics


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 6, 300)
    assert macro_f1(y, p, 6) == pytest.approx(f1_score(y, p, average="macro", labels=np.unique(y)))


def test_summary_interval_brackets_the_mean():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    preds = np.where(rng.random((3, 400)) < 0.7, labels, (labels + 1) % 10)
    s = summarize(preds, labels, num_classes=10, samples=500)
    acc = s["accuracy"]
    assert acc["ci95"][0] < acc["mean"] < acc["ci95"][1]
    assert acc["mean"] == pytest.approx(0.7, abs=0.05) and len(acc["per_seed"]) == 3
    assert 0.6 < acc["ci95"][0] and acc["ci95"][1] < 0.8


def test_paired_delta_is_zero_for_identical_and_signed_for_better():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 300)
    base = np.where(rng.random((2, 300)) < 0.3, labels, (labels + 1) % 10)
    same = paired_delta(base, base, labels, samples=300)
    assert same == {"mean": 0.0, "ci95": [0.0, 0.0]}
    better = np.where(rng.random((2, 300)) < 0.8, labels, (labels + 1) % 10)
    d = paired_delta(better, base, labels, samples=300)
    assert d["ci95"][0] > 0.3 and d["mean"] == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ValueError, match="same seeds and images"):
        paired_delta(better[:1], base, labels)


def test_fid_and_kid():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8))
    b = rng.normal(size=(500, 8))
    far = rng.normal(3.0, 1.0, size=(500, 8))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(a, b) < 1.0 < frechet_distance(a, far)
    assert abs(kernel_distance(a, b)) < 0.05 < kernel_distance(a, far)


def _frame(preds, labels):
    n = len(labels)
    return pd.DataFrame({
        "eval_set": ["target_test"] * n + ["source_test"] * n,
        "path": [f"t{i}" for i in range(n)] + [f"s{i}" for i in range(n)],
        "label_index": np.concatenate([labels, labels]),
        "pred": np.concatenate([preds, labels]),
    })


def test_arm_metrics_has_the_contract_shape():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 100)
    preds = {
        "source_only": {s: _frame((labels + 1) % 4, labels) for s in (0, 1)},
        "cyclegan": {s: _frame(labels, labels) for s in (0, 1)},
    }
    m = arm_metrics(preds, num_classes=4, samples=200, seed=0)
    assert set(m) == {"target_test", "source_test", "benefit"}
    assert set(m["target_test"]["cyclegan"]) == {"accuracy", "macro_f1"}
    assert set(m["target_test"]["cyclegan"]["accuracy"]) == {"mean", "ci95", "per_seed"}
    assert set(m["source_test"]["cyclegan"]) == {"accuracy"}
    assert list(m["benefit"]) == ["cyclegan"]
    assert m["benefit"]["cyclegan"]["accuracy_delta"]["mean"] == 1.0


def test_arm_metrics_refuses_unpaired_seeds():
    labels = np.zeros(10, int)
    preds = {"source_only": {0: _frame(labels, labels)}, "cyclegan": {1: _frame(labels, labels)}}
    with pytest.raises(ValueError, match="paired by seed"):
        arm_metrics(preds, num_classes=2, samples=100, seed=0)
