"""Balanced pseudo-labels: a reader's systematic confusions are undone by the class proportions and
by neighbours that share a class."""
import dataclasses

import pytest
import torch

from augment.balanced_labels import balanced_assignment, balanced_pseudo_labels, neighbour_average
from augment.cyclegan import CycleGANConfig, train_cyclegan

TINY = CycleGANConfig(steps=1, batch_size=4, ngf=4, n_blocks=1, ndf=4, d_layers=1, pool_size=5, log_every=1, semantic_width=4,
                      semantic_batch_size=8)


def test_a_class_the_reader_overpredicts_gives_its_least_likely_images_to_the_starved_class():
    # 100 images of class 0 and 100 of class 1, all read as class 0: the true 0s with 0.9, the true
    # 1s with 0.6. The argmax labels everything 0; equal proportions give the 1s back.
    probs = torch.cat([torch.tensor([[0.9, 0.1]]).repeat(100, 1), torch.tensor([[0.6, 0.4]]).repeat(100, 1)])
    truth = torch.arange(200) // 100
    assert (probs.argmax(1) == truth).float().mean() == 0.5
    labels = balanced_assignment(probs, torch.tensor([0.5, 0.5]))
    assert torch.equal(labels, truth)


def test_the_class_totals_follow_the_prior_not_the_readers_bias():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(600, 3, generator=g) + torch.tensor([2.0, 0.0, 0.0]), 1)  # biased to class 0
    for prior in (torch.tensor([1.0, 1.0, 1.0]), torch.tensor([3.0, 2.0, 1.0])):
        counts = torch.bincount(balanced_assignment(probs, prior, epsilon=0.05), minlength=3).float()
        expected = 600 * prior / prior.sum()
        assert torch.allclose(counts, expected, atol=0.05 * 600), (counts, expected)


def test_a_finite_strength_lets_a_class_the_target_really_has_more_of_keep_its_images():
    # The target has 100 images of class 0 and 20 of class 1, read confidently; the prior says half and half.
    sure = torch.linspace(0.85, 0.99, 120)
    truth = (torch.arange(120) >= 100).long()
    probs = torch.stack([torch.where(truth == 0, sure, 1 - sure), torch.where(truth == 1, sure, 1 - sure)], 1)
    prior = torch.tensor([0.5, 0.5])
    exact = balanced_assignment(probs, prior)
    soft = balanced_assignment(probs, prior, strength=1.0)
    assert (exact == truth).float().mean() < 0.7  # forced to 60/60: 40 class-0 images mislabelled
    assert torch.equal(soft, truth)
    with pytest.raises(ValueError, match="strength"):
        balanced_assignment(probs, prior, strength=0.0)


def test_neighbours_in_feature_space_outvote_a_noisy_reading():
    # Two tight clusters in feature space; each has a few images the reader gets wrong.
    g = torch.Generator().manual_seed(0)
    features = torch.cat([torch.randn(50, 8, generator=g) * 0.05 + 1, torch.randn(50, 8, generator=g) * 0.05 - 1])
    truth = torch.arange(100) // 50
    probs = torch.nn.functional.one_hot(truth, 2).float() * 0.8 + 0.1
    wrong = torch.tensor([3, 17, 60, 88])
    probs[wrong] = probs[wrong].flip(1)
    assert (probs.argmax(1) != truth).sum() == 4
    assert torch.equal(neighbour_average(probs, features, 10).argmax(1), truth)
    labels, moved = balanced_pseudo_labels(probs, features, torch.tensor([1.0, 1.0]), neighbours=10)
    assert torch.equal(labels, truth) and moved == 0.0  # the neighbours already set every reading right
    # chunked the same as in one piece
    assert torch.allclose(neighbour_average(probs, features, 10, chunk=7), neighbour_average(probs, features, 10))


def test_shapes_are_checked_and_an_empty_set_has_no_labels():
    with pytest.raises(ValueError, match="prior"):
        balanced_assignment(torch.rand(5, 3), torch.ones(4))
    assert balanced_assignment(torch.zeros(0, 3), torch.ones(3)).shape == (0,)


def _two_class_data(n=32, size=8):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    source = ((torch.rand(n, 1, size, size, generator=g) * 0.3 - 0.9) + 1.2 * labels.view(-1, 1, 1, 1).float()).clamp(-1, 1)
    return source, (source * 0.5).clamp(-1, 1), labels


def test_balanced_labels_are_made_only_once_the_classifier_is_competent_and_survive_a_resume():
    source, target, labels = _two_class_data()
    saved = {}
    cfg = dataclasses.replace(TINY, steps=4, lambda_semantic=1.0, pseudo_labels="balanced", relabel_every=2,
                              semantic_self_training=True)
    # Never competent: no target image gets a label, so the target-side terms stay empty.
    _, state = train_cyclegan(source, target, dataclasses.replace(cfg, semantic_threshold=1e-9), source_labels=labels, num_classes=2)
    assert all(h["target_labeled"] == 0.0 for h in state.history)
    # Competent from the start: every target image is labelled at step 0 and the checkpoint keeps the labels.
    _, state = train_cyclegan(source, target, dataclasses.replace(cfg, semantic_threshold=1e9), source_labels=labels, num_classes=2,
                              checkpoint=lambda step, snap: saved.update({step: snap}), checkpoint_every=2)
    assert all(h["target_labeled"] == 1.0 for h in state.history)
    assert all(0.0 <= h["pseudo_moved"] <= 1.0 for h in state.history)  # the balancing's share, logged
    pseudo = saved[2]["target_pseudo"]
    assert pseudo.shape == (len(target),) and pseudo.min() >= 0
    assert torch.bincount(pseudo, minlength=2).tolist() == [16, 16]  # the source's proportions
    resumed, state = train_cyclegan(source, target, dataclasses.replace(cfg, semantic_threshold=1e9), source_labels=labels,
                                    num_classes=2, resume=saved[2])
    assert state.step == 4 and "pseudo_moved" in state.history[-1]


def test_a_target_set_larger_than_the_pool_is_labelled_a_fresh_random_pool_at_a_time():
    source, target, labels = _two_class_data()
    saved = {}
    cfg = dataclasses.replace(TINY, steps=6, lambda_semantic=1.0, semantic_threshold=1e9, pseudo_labels="balanced", relabel_every=2,
                              relabel_pool=8)
    _, state = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2,
                              checkpoint=lambda step, snap: saved.update({step: snap}), checkpoint_every=2)
    first, later = saved[2]["target_pseudo"], saved[4]["target_pseudo"]
    assert (first >= 0).sum() == 8  # one pool labelled, the rest still unknown
    assert (later >= 0).sum() > 8  # later pools are other images; earlier labels are kept
    assert ((first >= 0) <= (later >= 0)).all()
    assert ((later >= 0) <= (state.target_labels >= 0)).all()  # the run returns the labels it ended with


def test_the_class_discriminator_judges_translations_by_class_without_a_conditional_generator():
    source, target, labels = _two_class_data()
    cfg = dataclasses.replace(TINY, steps=2, lambda_semantic=1.0, semantic_threshold=1e9, pseudo_labels="balanced",
                              class_discriminator=True)
    nets, _ = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2)
    assert getattr(nets.G_st, "num_classes", 0) == 0  # translations are not told their class
    assert nets.D_t.num_classes == 2 and nets.D_s.num_classes == 2
    plain, _ = train_cyclegan(source, target, dataclasses.replace(cfg, class_discriminator=False), source_labels=labels, num_classes=2)
    assert plain.D_t.num_classes == 0
