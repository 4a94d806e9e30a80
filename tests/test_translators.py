"""Translators that keep the label: CyCADA's semantic loss, the class-conditional GAN, and resuming
a checkpoint on another device."""
import dataclasses
import io
import math

import pytest
import torch

from augment.cyclegan import (
    CycleGANConfig, _restore, SemanticClassifier, build_cyclegan, is_conditional, load_generator,
    save_generator, train_cyclegan, translate,
)
from augment.image_pool import ImagePool

TINY = CycleGANConfig(steps=1, batch_size=4, ngf=4, n_blocks=1, ndf=4, d_layers=1, pool_size=5, log_every=1, semantic_width=4,
                      semantic_batch_size=8)


def _labeled_data(n=32, size=8):
    """Two classes a classifier learns at once: dark images are class 0, bright ones class 1."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    source = (torch.rand(n, 1, size, size, generator=g) * 0.3 - 0.9) + 1.2 * labels.view(-1, 1, 1, 1).float()
    target = (source * 0.5).clamp(-1, 1)
    return source.clamp(-1, 1), target, labels


def _weights(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_semantic_loss_changes_generator_only_when_on_and_competent():
    source, target, labels = _labeled_data()
    kw = dict(source_labels=labels, num_classes=2)
    off, _ = train_cyclegan(source, target, TINY, **kw)
    # Switched on but the classifier is never competent (running loss never below 1e-9): no effect.
    idle, _ = train_cyclegan(source, target, dataclasses.replace(TINY, lambda_semantic=1.0, semantic_threshold=1e-9), **kw)
    # Switched on and competent from the first step: the generators' gradients change.
    # (pseudo_label_threshold ~0: every target image takes C's reading, so G_ts gets the target term too)
    on, state = train_cyclegan(source, target, dataclasses.replace(TINY, lambda_semantic=1.0, semantic_threshold=1e9,
                                                                   pseudo_label_threshold=1e-6), **kw)
    assert state.history[-1]["semantic_on"] == 1.0 and state.history[-1]["loss_semantic"] > 0
    for name in ("G_st", "G_ts"):
        assert _same(_weights(getattr(off, name)), _weights(getattr(idle, name))), f"{name} moved with an incompetent classifier"
        assert not _same(_weights(getattr(off, name)), _weights(getattr(on, name))), f"{name} ignored the semantic loss"
    # The classifier learns from real labeled images only: the generators' loss never reaches it.
    assert _same(_weights(idle.C), _weights(on.C))


def test_semantic_loss_switches_on_once_the_classifier_is_competent():
    source, target, labels = _labeled_data()
    cfg = dataclasses.replace(TINY, steps=40, lambda_semantic=1.0, semantic_threshold=0.3, semantic_lr=1e-2)
    _, state = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2)
    on = [h["semantic_on"] for h in state.history]
    assert on[0] == 0.0 and on[-1] == 1.0, on
    for h in state.history:  # on exactly when C's running loss is under the threshold
        assert h["semantic_on"] == float(h["loss_c_running"] < cfg.semantic_threshold)
        assert (h["loss_semantic"] > 0) == bool(h["semantic_on"])


def test_semantic_loss_needs_source_labels():
    source, target, _ = _labeled_data()
    with pytest.raises(ValueError, match="source label"):
        train_cyclegan(source, target, dataclasses.replace(TINY, lambda_semantic=1.0))


def test_cgan_discriminators_see_real_and_fake_labeled_at_the_same_rate():
    from augment.cyclegan import _same_label_rate

    g = torch.Generator().manual_seed(0)
    real, fake = torch.full((1000,), -1), torch.arange(1000) % 5
    real[:250] = 1  # a quarter of the real target images have a label, every fake has one
    r, f = _same_label_rate(real, fake, g)
    assert torch.equal(r, real) and abs((f >= 0).float().mean().item() - 0.25) < 0.05
    assert torch.equal(f[f >= 0], fake[f >= 0])  # labels are hidden, never changed
    r, f = _same_label_rate(torch.full((8,), -1), fake[:8], g)
    assert (f == -1).all()  # no real label at all: the discriminator is unconditional


def test_cgan_pseudo_labels_only_from_a_competent_confident_semantic_classifier():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.tensor([5.0, 0.0, 0.0]))  # always class 0, softmax ~0.987
    sem = SemanticClassifier(net.eval(), [(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.long))], TINY)
    x, known = torch.zeros(3, 1, 2, 2), torch.tensor([-1, 2, -1])
    assert torch.equal(sem.pseudo_labels(x, known, 0.9), known)  # not competent yet: known labels only
    sem.running_loss = 0.1
    assert torch.equal(sem.pseudo_labels(x, known, 0.9), torch.tensor([0, 2, 0]))  # known label wins
    assert torch.equal(sem.pseudo_labels(x, known, 0.999), known)  # not confident enough


def test_cgan_generator_is_conditional_and_round_trips(tmp_path):
    source, target, labels = _labeled_data()
    target_labels = torch.full((len(target),), -1)
    target_labels[:24] = labels[:24]  # visible target labels (the rest unknown)
    cfg = dataclasses.replace(TINY, steps=3, conditional=True, lambda_semantic=1.0)
    nets, state = train_cyclegan(source, target, cfg, source_labels=labels, target_labels=target_labels, num_classes=2)
    assert is_conditional(nets.G_st) and not is_conditional(nets.G_ts)
    assert max(h["target_labeled"] for h in state.history) > 0
    out0 = translate(nets.G_st, source[:4], torch.zeros(4, dtype=torch.long))
    out1 = translate(nets.G_st, source[:4], torch.ones(4, dtype=torch.long))
    assert out0.shape == source[:4].shape and not torch.equal(out0, out1)  # the label steers the image
    save_generator(nets.G_st, cfg, 1, tmp_path / "G.pt", num_classes=2)
    loaded = load_generator(tmp_path / "G.pt")
    assert is_conditional(loaded) and torch.equal(translate(loaded, source[:4], labels[:4]), translate(nets.G_st, source[:4], labels[:4]))


def test_cgan_is_deterministic_and_resumes_exactly():
    source, target, labels = _labeled_data()
    cfg = dataclasses.replace(TINY, steps=8, conditional=True, lambda_semantic=1.0, semantic_threshold=1e9, log_every=4)
    kw = dict(source_labels=labels, target_labels=torch.full((len(target),), -1), num_classes=2)
    full, _ = train_cyclegan(source, target, cfg, **kw)
    saved = {}
    train_cyclegan(source, target, cfg, checkpoint=lambda step, s: saved.setdefault(step, s), checkpoint_every=4, **kw)
    buf = io.BytesIO()  # the stage reads checkpoints with weights_only=True: the blob must allow it
    torch.save(saved[4], buf)
    buf.seek(0)
    blob = torch.load(buf, map_location="cpu", weights_only=True)
    resumed, state = train_cyclegan(source, target, cfg, resume=blob, **kw)
    assert state.step == 8
    for name in ("G_st", "G_ts", "C"):
        a, b = _weights(getattr(full, name)), _weights(getattr(resumed, name))
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-6), f"{name}.{k} differs after resume"


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


@pytest.mark.filterwarnings("ignore:.*copying from a non-meta parameter")
def test_cgan_checkpoint_restored_for_another_device_puts_every_tensor_there():
    """A checkpoint read onto the CPU must land whole on the training device (pool included);
    'meta' stands in for a GPU on machines without one."""
    source, target, labels = _labeled_data()
    cfg = dataclasses.replace(TINY, steps=6, conditional=True, lambda_semantic=1.0, semantic_threshold=1e9, pool_size=3)
    saved = {}
    train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2,
                   checkpoint=lambda step, s: saved.setdefault(step, s), checkpoint_every=3)
    blob = saved[3]
    assert blob["pool_t"]["images"] and all(t.device.type == "cpu" for t in _tensors(blob["models"]))
    device = torch.device("meta")
    nets = build_cyclegan(cfg, 1, 2)
    for net in nets.named().values():
        net.to(device)
    opts = {
        "opt_g": torch.optim.Adam([*nets.G_st.parameters(), *nets.G_ts.parameters()]),
        "opt_d": torch.optim.Adam([*nets.D_s.parameters(), *nets.D_t.parameters()]),
        "opt_c": torch.optim.Adam(nets.C.parameters()),
    }
    pools = {"pool_s": ImagePool(size=3), "pool_t": ImagePool(size=3)}
    state = _restore(blob, nets, opts, pools, device)
    assert state.step == 3
    placed = [*_tensors(nets.state_dict()), *(t for o in opts.values() for t in _tensors(o.state_dict()["state"])
                                              if t.ndim > 0), *(t for p in pools.values() for t in p.images + p.labels)]
    assert len(placed) > 20 and all(t.device == device for t in placed), {t.device for t in placed}
    assert len(pools["pool_t"].images) == 3 and len(pools["pool_t"].labels) == 3


def test_cgan_with_hinge_spectral_norm_and_unet_trains():
    source, target, labels = _labeled_data(size=16)
    cfg = dataclasses.replace(TINY, steps=3, generator="unet", unet_downs=3, loss="hinge", spectral_norm=True,
                              conditional=True, lambda_semantic=1.0)
    nets, state = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2)
    assert all(math.isfinite(v) for v in state.history[-1].values())
    assert translate(nets.G_st, source[:2], labels[:2]).shape == (2, 1, 16, 16)


def test_semantic_classifier_views_keep_shape_range_and_are_seeded():
    from augment.cyclegan import robust_views

    x = torch.rand(8, 3, 16, 16) * 2 - 1
    a = robust_views(x, torch.Generator().manual_seed(0))
    b = robust_views(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert (a - x).abs().mean() > 0.05  # views differ visibly from the originals


def test_semantic_self_training_teaches_the_classifier_from_confident_target_readings():
    source, target, labels = _labeled_data()
    base = dataclasses.replace(TINY, steps=4, lambda_semantic=1.0, semantic_threshold=1e9, pseudo_label_threshold=1e-6)
    plain, _ = train_cyclegan(source, target, base, source_labels=labels, num_classes=2)
    selft, _ = train_cyclegan(source, target, dataclasses.replace(base, semantic_self_training=True), source_labels=labels, num_classes=2)
    assert not _same(_weights(plain.C), _weights(selft.C))  # C learned from the target images too



def test_semantic_self_training_uses_confident_target_readings_only_once_competent():
    def sem_with(unlabeled):
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        with torch.no_grad():
            net[1].weight.zero_()
            net[1].bias.copy_(torch.tensor([5.0, 0.0]))  # reads everything as class 0, softmax ~0.993
        sem = SemanticClassifier(net.eval(), [(torch.zeros(4, 1, 2, 2), torch.ones(4, dtype=torch.long))],
                                 dataclasses.replace(TINY, semantic_views=False, semantic_lr=1e-9))
        sem.unlabeled = unlabeled
        return sem

    cpu, g = torch.device("cpu"), torch.Generator().manual_seed(0)
    source_only = sem_with(None).learn(g, cpu, 1).item()  # every source row costs ~5 (true class 1)
    assert source_only == pytest.approx(5.0, abs=0.05)
    sem = sem_with(torch.zeros(6, 1, 2, 2))
    assert sem.learn(g, cpu, 1).item() == pytest.approx(source_only, abs=0.05)  # not competent: target rows ignored
    sem.running_loss = 0.1
    assert sem.learn(g, cpu, 1).item() == pytest.approx(source_only / 2, abs=0.05)  # half the rows: target read as 0, ~0 cost


def _pixel_reader(size=16):
    """A C that reads class 1 from one exact pixel (the centre): what a generator learns to fool."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(size * size, 2))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[1, (size // 2) * size + size // 2] = 20.0
        net[1].bias.copy_(torch.tensor([0.0, 10.0]))
    return net.eval()


def test_semantic_judge_views_make_a_pixel_exact_pattern_stop_paying():
    size, n = 16, 64
    dot = torch.full((n, 1, size, size), -1.0)
    dot[:, :, size // 2, size // 2] = 1.0  # class 1 for this C at exactly one pixel, nothing a view keeps
    block = torch.full((n, 1, size, size), -1.0)
    block[:, :, 4:12, 4:12] = 1.0  # class 1 where it stands: a shape, which every view keeps
    y1 = torch.ones(n, dtype=torch.long)
    no_target = (torch.zeros(1, 1, size, size), torch.full((1,), -1, dtype=torch.long))

    def judged(images, judge_views):
        cfg = dataclasses.replace(TINY, semantic_judge_views=judge_views)
        sem = SemanticClassifier(_pixel_reader(size), [(block, y1)], cfg)
        images = images.clone().requires_grad_(True)
        loss = sem.consistency(images, y1, *no_target, rng=torch.Generator().manual_seed(0))
        loss.backward()
        return loss.item(), images.grad

    plain_dot, _ = judged(dot, False)
    viewed_dot, grad = judged(dot, True)
    viewed_block, _ = judged(block, True)
    assert plain_dot < 0.01  # read exactly, the one pixel fools C
    assert viewed_dot > 1.0  # through views it no longer does: the generator pays for it
    assert viewed_block < 0.01  # a translation that keeps the class where it stands pays nothing
    assert grad.abs().sum() > 0  # the views are differentiable: C's gradient reaches the generator


def test_semantic_judge_views_need_a_random_generator():
    sem = SemanticClassifier(_pixel_reader(4), [(torch.zeros(2, 1, 4, 4), torch.ones(2, dtype=torch.long))],
                             dataclasses.replace(TINY, semantic_judge_views=True))
    with pytest.raises(ValueError, match="random generator"):
        sem.consistency(torch.zeros(2, 1, 4, 4), torch.ones(2, dtype=torch.long), torch.zeros(1, 1, 4, 4), torch.full((1,), -1))
