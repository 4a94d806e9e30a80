"""Mixing policies and arms: batch composition holds batch by batch; arms see only their labels."""
import pytest
import torch

from augment.arms import ARMS, ArmUnavailable, training_parts
from augment.classify import ClassifierConfig, predict, train_classifier
from augment.mixing import LabeledImages, MixedBatches


def _set(value: float, n: int, label: int) -> LabeledImages:
    return LabeledImages(torch.full((n, 1, 4, 4), value), torch.full((n,), label))


def test_fraction_holds_in_every_batch():
    real, syn = _set(0.0, 50, 0), _set(1.0, 30, 1)
    mb = MixedBatches(parts={"source": (real, 0.75), "cyclegan": (syn, 0.25)}, batch_size=16, seed=0)
    for _ in range(20):
        x, y = mb.next()
        assert x.shape == (16, 1, 4, 4)
        assert (y == 1).sum() == 4 and (x[:, 0, 0, 0] == 1).sum() == 4
    assert "cyclegan=30 x 0.25" in repr(mb)


def test_mixing_rejects_bad_fractions_and_empty_parts():
    real = _set(0.0, 5, 0)
    with pytest.raises(ValueError, match="sum to 1"):
        MixedBatches(parts={"a": (real, 0.5), "b": (real, 0.2)}, batch_size=8, seed=0)
    with pytest.raises(ValueError, match="'b' is empty"):
        MixedBatches(parts={"a": (real, 0.5), "b": (_set(0, 0, 0), 0.5)}, batch_size=8, seed=0)


def test_zero_fraction_drops_the_part():
    real, syn = _set(0.0, 5, 0), _set(1.0, 5, 1)
    mb = MixedBatches(parts={"source": (real, 1.0), "cyclegan": (syn, 0.0)}, batch_size=8, seed=0)
    assert (mb.next()[1] == 0).all()


def test_arms_use_only_their_data():
    src, tgt, syn = _set(0, 4, 0), _set(1, 4, 1), _set(2, 4, 2)
    assert set(training_parts(ARMS["source_only"], source=src, target=None, synthetic=None, synthetic_fraction=0.5)) == {"source"}
    parts = training_parts(ARMS["cyclegan"], source=src, target=None, synthetic=syn, synthetic_fraction=0.3)
    assert parts["cyclegan"][1] == 0.3 and parts["source"][1] == pytest.approx(0.7)
    assert set(training_parts(ARMS["oracle"], source=src, target=tgt, synthetic=None, synthetic_fraction=0.5)) == {"target"}
    with pytest.raises(ArmUnavailable, match="no labels"):
        training_parts(ARMS["oracle"], source=src, target=_set(0, 0, 0), synthetic=None, synthetic_fraction=0.5)


def test_target_few_takes_its_own_share():
    src, few = _set(0, 4, 0), _set(1, 2, 1)
    parts = training_parts(ARMS["target_few"], source=src, target=few, synthetic=None, synthetic_fraction=0.9, target_fraction=0.25)
    assert parts["target_few"] == (few, 0.25) and parts["source"][1] == pytest.approx(0.75)
    x, y = MixedBatches(parts=parts, batch_size=8, seed=0).next()
    assert (y == 1).sum() == 2  # a quarter of every batch, whatever synthetic_fraction says


def test_classifier_learns_a_separable_task():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(64, 1, 8, 8, generator=g) * 0.5 - 1
    x1 = torch.rand(64, 1, 8, 8, generator=g) * 0.5 + 0.5
    data = LabeledImages(torch.cat([x0, x1]), torch.cat([torch.zeros(64), torch.ones(64)]).long())
    mb = MixedBatches(parts={"source": (data, 1.0)}, batch_size=16, seed=0)
    model = train_classifier(mb, ClassifierConfig(width=4, steps=40, lr=1e-2), in_channels=1, num_classes=2, seed=0)
    assert (predict(model, data.images) == data.labels).float().mean() > 0.95
