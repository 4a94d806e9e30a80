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


def test_a_gan_arm_with_a_few_labels_gives_them_their_share_and_splits_the_rest_as_its_gan_arm_does():
    """cyclegan_few and cgan_few: mix.target_fraction of each batch from the few target labels, the
    rest as the GAN arm alone draws a whole batch (source, and its synthetic share of the rest)."""
    src, syn, few = _set(0, 8, 0), _set(1, 8, 1), _set(2, 4, 2)
    for arm in ("cyclegan_few", "cgan_few"):
        parts = training_parts(ARMS[arm], source=src, target=few, synthetic=syn, synthetic_fraction=0.25, target_fraction=0.5)
        gan = ARMS[arm].gan
        assert set(parts) == {"source", gan, "target_few"} and parts["target_few"] == (few, 0.5)
        assert parts["source"][1] == pytest.approx(0.375) and parts[gan] == (syn, pytest.approx(0.125))
        x, y = MixedBatches(parts=parts, batch_size=16, seed=0).next()
        assert [(y == k).sum().item() for k in range(3)] == [6, 2, 8]
        with pytest.raises(ArmUnavailable, match="no labeled target train images are visible"):
            training_parts(ARMS[arm], source=src, target=_set(2, 0, 2), synthetic=syn, synthetic_fraction=0.25)
    # without the few labels the same fractions are the GAN arm's own, to the bit (its results do not move)
    alone = training_parts(ARMS["cyclegan"], source=src, target=None, synthetic=syn, synthetic_fraction=0.3)
    assert alone == {"source": (src, 1.0 - 0.3), "cyclegan": (syn, 0.3)}


def test_classifier_learns_a_separable_task():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(64, 1, 8, 8, generator=g) * 0.5 - 1
    x1 = torch.rand(64, 1, 8, 8, generator=g) * 0.5 + 0.5
    data = LabeledImages(torch.cat([x0, x1]), torch.cat([torch.zeros(64), torch.ones(64)]).long())
    mb = MixedBatches(parts={"source": (data, 1.0)}, batch_size=16, seed=0)
    model = train_classifier(mb, ClassifierConfig(width=4, steps=40, lr=1e-2), in_channels=1, num_classes=2, seed=0)
    assert (predict(model, data.images) == data.labels).float().mean() > 0.95


def test_sets_stored_as_uint8_train_and_predict_exactly_as_their_float_values():
    """The classifier stage keeps its sets as stored uint8 (a quarter of float32's memory); every
    batch, with a classic transform on one part, and every prediction must be what the same
    images as floats give."""
    from augment.classic import classic_transform
    from augment.images import to_tensor, to_uint8_tensor

    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (40, 8, 8, 3), generator=g, dtype=torch.uint8).numpy()
    labels = torch.arange(40) % 2

    def run(convert):
        a, b = LabeledImages(convert(pixels[:24]), labels[:24]), LabeledImages(convert(pixels[24:]), labels[24:])
        tf = {"classic": classic_transform([{"name": "RandomBrightnessContrast", "p": 1.0}], seed=0)}
        mb = MixedBatches(parts={"source": (a, 0.5), "classic": (b, 0.5)}, batch_size=8, seed=0, transforms=tf)
        first = mb.next()
        model = train_classifier(mb, ClassifierConfig(width=4, steps=5), in_channels=3, num_classes=2, seed=0)
        return first, predict(model, a.images), model.state_dict()

    (xf, yf), pf, wf = run(to_tensor)
    (xu, yu), pu, wu = run(to_uint8_tensor)
    assert xu.dtype == torch.float32 and torch.equal(xf, xu) and torch.equal(yf, yu)
    assert torch.equal(pf, pu)
    assert all(torch.equal(wf[k], wu[k]) for k in wf)


def test_renormalized_holds_the_target_statistics_in_every_batchnorm_and_leaves_the_weights():
    """The adabn arm: the source classifier's BatchNorm layers take the mean and variance of the
    target images' activations; no weight moves, and the classifier it came from is untouched."""
    import torch
    from torch import nn

    from augment.classify import renormalized
    from models.classifiers import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(1, 3, width=4).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = torch.rand(40, 1, 16, 16) * 0.5 - 0.8  # darker than anything the norms saw (they start at mean 0, var 1)
    inputs = []
    first = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    adapted = renormalized(model, target, batch_size=64)
    first_adapted = next(m for m in adapted.modules() if isinstance(m, nn.BatchNorm2d))
    hook = first.register_forward_hook(lambda mod, args, out: inputs.append(args[0]))
    with torch.no_grad():
        model(target)
    hook.remove()
    x = inputs[0]  # what the first norm reads of the target images: one batch, so its statistics exactly
    assert torch.allclose(first_adapted.running_mean, x.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(first_adapted.running_var, x.var(dim=(0, 2, 3), unbiased=True), atol=1e-4)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the source classifier as it was
    moved = {k for k, v in adapted.state_dict().items() if not torch.equal(v, before[k])}
    assert moved and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in moved), moved
    assert not any(m.training for m in adapted.modules())  # it reads in eval mode, like the classifier it came from
    assert renormalized(nn.Sequential(nn.Flatten(), nn.Linear(256, 3)), target) is None  # nothing to re-estimate


def test_renormalized_statistics_are_the_whole_sets_whatever_its_order_and_size():
    """A folder's target images come class by class: batches in that order each held one class, and
    their mean variance left out the difference between the classes. A last batch of one image
    counted as much as a full one."""
    import torch
    from torch import nn

    from augment.classify import renormalized
    from models.classifiers import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(1, 3, width=4).eval()
    g = torch.Generator().manual_seed(1)
    dark, bright = (torch.rand(96, 1, 16, 16, generator=g) * 0.2 + centre for centre in (-0.9, 0.7))
    target = torch.cat([dark, bright, bright[:1]])  # 193 images: two "classes" in order, and one more
    first = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    inputs = []
    hook = first.register_forward_hook(lambda mod, args, out: inputs.append(args[0]))
    with torch.no_grad():
        model(target)  # the first norm's input does not depend on any norm's statistics
    hook.remove()
    whole_mean, whole_var = inputs[0].mean(dim=(0, 2, 3)), inputs[0].var(dim=(0, 2, 3))
    adapted = next(m for m in renormalized(model, target, batch_size=64).modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.allclose(adapted.running_mean, whole_mean, atol=0.05 * whole_var.sqrt().max())
    assert torch.allclose(adapted.running_var, whole_var, rtol=0.15)
