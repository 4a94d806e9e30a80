"""Network shapes, losses, the image pool, and CycleGAN training invariants."""
import pytest
import torch

from augment.cyclegan import CycleGANConfig, load_generator, save_generator, scaled_lr, train_cyclegan, translate
from augment.image_pool import ImagePool
from models.classifiers import SmallCNN, build_classifier
from augment.io import load_module, save_module
from models.discriminators import PatchDiscriminator, patch_size_problem
from models.generators import (
    GENERATORS,
    ClassConditional,
    ResnetGenerator,
    UnetGenerator,
    build_conditional_generator,
    build_generator,
    generator_size_problem,
)
from models.losses import GAN_LOSSES, cycle_loss, gan_loss, hinge_loss, identity_loss, lsgan_loss


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("channels, size", [(1, 16), (3, 32), (3, 20)])
def test_generator_keeps_shape_and_range(channels, size):
    g = ResnetGenerator(channels, channels, ngf=8, n_blocks=2)
    x = torch.rand(2, channels, size, size) * 2 - 1
    y = g(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1


def test_generator_rejects_sizes_not_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(1, 1, ngf=4, n_blocks=1)(torch.zeros(1, 1, 18, 18))


@pytest.mark.parametrize("n_layers, size, out", [(1, 16, 6), (2, 16, 2), (2, 32, 6), (3, 64, 6)])
def test_patch_discriminator_shape(n_layers, size, out):
    d = PatchDiscriminator(3, ndf=8, n_layers=n_layers)
    assert d(torch.zeros(2, 3, size, size)).shape == (2, 1, out, out)


def test_classifier_shapes_and_features():
    m = SmallCNN(3, 43, width=8)
    x = torch.zeros(4, 3, 16, 16)
    assert m(x).shape == (4, 43)
    assert m.features(x).shape == (4, 32)  # 4 x width
    with pytest.raises(ValueError, match="at least 8x8"):
        m(torch.zeros(1, 3, 4, 4))


def test_registries_name_the_valid_choices():
    with pytest.raises(ValueError, match="Valid: resnet, unet"):
        build_generator("unet9000")
    with pytest.raises(ValueError, match="Valid: resnet, unet"):
        generator_size_problem("unet9000", 32)
    with pytest.raises(ValueError, match="Valid: small_cnn"):
        build_classifier("vit")
    with pytest.raises(ValueError, match="Valid: hinge, lsgan, vanilla"):
        gan_loss("wgan")


def test_losses():
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert lsgan_loss(ones, True) == 0 and lsgan_loss(zeros, False) == 0
    assert lsgan_loss(zeros, True) == 1
    assert gan_loss("vanilla")(torch.full((2, 1), 20.0), True) < 1e-6
    x = torch.rand(2, 1, 8, 8)
    assert cycle_loss(x, x) == 0 and identity_loss(x, x + 0.5).item() == pytest.approx(0.5)


def test_hinge_loss_values():
    assert gan_loss("hinge") is hinge_loss
    assert hinge_loss(torch.full((2, 1, 3, 3), 2.0), True) == 0  # real beyond the margin: free
    assert hinge_loss(torch.full((2, 1, 3, 3), -2.0), False) == 0  # fake beyond the margin: free
    assert hinge_loss(torch.zeros(2, 1), True) == 1 and hinge_loss(torch.zeros(2, 1), False) == 1
    assert hinge_loss(torch.tensor([0.5, 3.0]), True).item() == pytest.approx(0.25)  # mean(relu(1 - x))
    assert hinge_loss(torch.full((2, 1, 3, 3), 3.0), True, for_generator=True) == -3
    with pytest.raises(ValueError, match="real=True"):
        hinge_loss(torch.zeros(2), False, for_generator=True)


@pytest.mark.parametrize("name", sorted(GAN_LOSSES))
def test_every_loss_takes_for_generator(name):
    logits = torch.randn(2, 1, 3, 3)
    value = gan_loss(name)(logits, True, for_generator=True)
    assert value.shape == ()
    if name != "hinge":  # lsgan and vanilla give the generator their "real" target loss
        assert torch.equal(value, gan_loss(name)(logits, True))


@pytest.mark.parametrize("in_ch, out_ch, size, num_downs", [(1, 1, 16, 4), (3, 3, 32, 4), (1, 3, 8, 3), (3, 1, 24, 3), (2, 2, 4, 2)])
def test_unet_keeps_shape_and_range(in_ch, out_ch, size, num_downs):
    g = UnetGenerator(in_ch, out_ch, ngf=4, num_downs=num_downs)
    x = torch.rand(2, in_ch, size, size) * 2 - 1
    y = g(x)
    assert y.shape == (2, out_ch, size, size)
    assert y.min() >= -1 and y.max() <= 1
    y.square().mean().backward()  # the skips and the innermost level all get gradients
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_unet_widths_and_size_check():
    g = UnetGenerator(3, 3, ngf=4, num_downs=5)
    convs = [m for m in g.down.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 32]  # ngf * min(2**i, 8)
    assert g(torch.zeros(1, 3, 32, 64)).shape == (1, 3, 32, 64)  # non-square is fine
    with pytest.raises(ValueError, match=r"divisible by 32, got \(32, 48\)"):
        g(torch.zeros(1, 3, 32, 48))


def test_generators_registered_and_built():
    assert GENERATORS == {"resnet": ResnetGenerator, "unet": UnetGenerator}
    res = build_generator("resnet", in_channels=1, out_channels=1, ngf=4, n_blocks=1)
    unet = build_generator("unet", in_channels=1, out_channels=1, ngf=4, num_downs=3)
    assert isinstance(res, ResnetGenerator) and isinstance(unet, UnetGenerator)
    x = torch.zeros(2, 1, 16, 16)
    assert res(x).shape == unet(x).shape == x.shape


def _forward_ok(net, size: int, channels: int = 1) -> bool:
    try:
        net(torch.zeros(2, channels, size, size))
        return True
    except (RuntimeError, ValueError):  # torch's "too small" errors, instance norm's, our size checks
        return False


SIZES = range(1, 73)  # every size, odd ones included, so each boundary is checked


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_patch_size_problem_matches_real_forwards(n_layers):
    d = PatchDiscriminator(1, ndf=2, n_layers=n_layers).train()
    wrong = [s for s in SIZES if _forward_ok(d, s) != (patch_size_problem(s, n_layers) is None)]
    assert not wrong, f"patch_size_problem is wrong for n_layers={n_layers} at sizes {wrong}"


def test_patch_size_problem_messages():
    assert patch_size_problem(16, 2) is None and patch_size_problem(32, 3) is None
    assert patch_size_problem(16, 3) == (
        "a 3-layer PatchGAN discriminator needs images of at least 24 px, got 16 (16 px allows at most 2 layers)"
    )
    assert "at least 6 px, got 4 (no PatchGAN depth fits 4 px)" in patch_size_problem(4, 1)
    assert "n_layers >= 1" in patch_size_problem(32, 0)


def test_generator_size_problem_matches_real_forwards():
    wrong = []
    res = ResnetGenerator(1, 1, ngf=2, n_blocks=1).train()
    wrong += [("resnet", s) for s in SIZES if _forward_ok(res, s) != (generator_size_problem("resnet", s, n_blocks=1) is None)]
    for num_downs in (2, 3, 4, 5):
        unet = UnetGenerator(1, 1, ngf=2, num_downs=num_downs).train()
        for s in SIZES:
            if _forward_ok(unet, s) != (generator_size_problem("unet", s, ngf=2, num_downs=num_downs) is None):
                wrong.append((f"unet num_downs={num_downs}", s))
    assert not wrong, f"generator_size_problem disagrees with real forwards at {wrong}"


def test_generator_size_problem_messages():
    assert generator_size_problem("unet", 16, num_downs=5) == (
        "the unet generator with num_downs=5 needs an image size divisible by 32, got 16"
    )
    assert generator_size_problem("unet", 16) is None  # the constructor's default num_downs=4
    assert generator_size_problem("unet", 8) == "the unet generator with num_downs=4 needs an image size divisible by 16, got 8"
    assert "divisible by 4 and at least 8, got 4" in generator_size_problem("resnet", 4, in_channels=3, n_blocks=9)
    assert generator_size_problem("resnet", 20) is None


def _conditional(num_classes=3, seed=0):
    torch.manual_seed(seed)
    return build_conditional_generator("unet", in_channels=2, out_channels=2, num_classes=num_classes, ngf=4, num_downs=2)


def test_class_conditional_generator():
    g = _conditional()
    assert isinstance(g, ClassConditional) and g.generator.down[0].in_channels == 2 + 3
    x = torch.rand(4, 2, 8, 8) * 2 - 1
    y = g(x, torch.tensor([0, 1, 2, -1]))
    assert y.shape == x.shape
    # -1 ("unknown") is exactly all-zero label planes.
    zeros = g.generator(torch.cat([x, torch.zeros(4, 3, 8, 8)], dim=1))
    assert torch.allclose(y[3], zeros[3], atol=1e-6)
    # The same image with different labels translates differently.
    outs = g(x[:1].expand(4, -1, -1, -1), torch.tensor([0, 1, 2, -1]))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(outs[i], outs[j]), f"label rows {i} and {j} gave the same output"
    planes = g.label_planes(torch.tensor([2, -1]), torch.zeros(2, 2, 3, 5))
    assert planes.shape == (2, 3, 3, 5)
    assert planes[0, 2].eq(1).all() and planes[0, :2].eq(0).all() and planes[1].eq(0).all()
    with pytest.raises(ValueError, match=r"\[-1, 3\)"):
        g(x, torch.tensor([0, 1, 3, -1]))
    with pytest.raises(ValueError, match="shape"):
        g(x, torch.zeros(3, dtype=torch.long))


def test_class_conditional_state_dict_and_file_round_trip(tmp_path):
    g = _conditional()
    keys = list(g.state_dict())
    assert keys and all(k.startswith("generator.") for k in keys)
    assert keys == list(_conditional(seed=1).state_dict())  # stable across builds
    arch = {"name": "unet", "in_channels": 2, "out_channels": 2, "num_classes": 3, "ngf": 4, "num_downs": 2}
    save_module(g, arch, tmp_path / "G.pt")
    loaded = load_module(tmp_path / "G.pt", build_conditional_generator)
    x, labels = torch.rand(3, 2, 8, 8), torch.tensor([1, -1, 0])
    assert torch.equal(loaded(x, labels), g.eval()(x, labels))


def test_projection_discriminator():
    torch.manual_seed(0)
    d = PatchDiscriminator(2, ndf=4, n_layers=2, num_classes=3)
    x = torch.randn(4, 2, 32, 32)
    plain = d(x)
    assert plain.shape == (4, 1, 6, 6)  # as without projection
    out = d(x, torch.tensor([0, 1, 2, -1]))
    assert out.shape == plain.shape
    assert torch.allclose(out[3], plain[3])  # unknown label: only the unconditional logits
    assert not torch.allclose(out[:3], plain[:3])
    per_label = d(x[:1].expand(3, -1, -1, -1), torch.tensor([0, 1, 2]))
    assert not torch.allclose(per_label[0], per_label[1]) and not torch.allclose(per_label[1], per_label[2])
    # The projection term is linear in the embedding: doubling it doubles out - plain.
    with torch.no_grad():
        d.embed.weight.mul_(2)
    doubled = d(x, torch.tensor([0, 1, 2, -1]))
    assert torch.allclose(doubled - plain, 2 * (out - plain), atol=1e-5)
    with pytest.raises(ValueError, match="num_classes=0"):
        PatchDiscriminator(2, ndf=4, n_layers=2)(x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[-1, 3\)"):
        d(x, torch.tensor([0, 1, 2, -2]))


def test_plain_discriminator_state_dict_unchanged():
    # Same keys as before spectral_norm and num_classes existed, so older checkpoints still load.
    d = PatchDiscriminator(3, ndf=4, n_layers=2)
    assert list(d.state_dict()) == [f"net.{i}.{p}" for i in (0, 2, 5, 8) for p in ("weight", "bias")]


def test_spectral_norm_is_applied():
    from torch.nn.utils import parametrize

    torch.manual_seed(0)
    d = PatchDiscriminator(3, ndf=4, n_layers=2, spectral_norm=True, num_classes=2).train()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(parametrize.is_parametrized(m, "weight") for m in convs)
    x = torch.randn(2, 3, 16, 16)
    for _ in range(5):  # each training forward runs one power iteration
        d(x, torch.tensor([0, -1]))
    with torch.no_grad():
        for m in convs:
            assert torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() == pytest.approx(1.0, abs=1e-2)
    assert d(x).shape == PatchDiscriminator(3, ndf=4, n_layers=2)(x).shape == (2, 1, 2, 2)


def test_image_pool_fills_then_mixes_history():
    pool = ImagePool(size=4, seed=0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returns what it got
    new = torch.full((64, 1, 1, 1), 100.0)
    out = pool.query(new)
    old = (out < 100).sum().item()
    assert 0 < old < 64  # about half from the history once full
    no_history = ImagePool(size=0)
    assert torch.equal(no_history.query(first), first) and torch.equal(no_history.query(new), new)  # never an old fake


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(32, 1, 8, 8, generator=g) * 2 - 1
    target = (torch.rand(32, 1, 8, 8, generator=g) * 2 - 1).clamp(0, 1)
    return source, target


TINY = CycleGANConfig(steps=12, batch_size=4, ngf=4, n_blocks=1, ndf=4, d_layers=1, pool_size=5, log_every=4)


def test_cyclegan_trains_and_cycle_loss_falls():
    g = torch.Generator().manual_seed(0)  # smooth images (upsampled 2x2 noise): a cycle a tiny net can learn
    source = torch.nn.functional.interpolate(torch.rand(32, 1, 2, 2, generator=g) * 2 - 1, size=8, mode="bilinear")
    target = torch.nn.functional.interpolate(torch.rand(32, 1, 2, 2, generator=g), size=8, mode="bilinear")
    cfg = CycleGANConfig(**{**TINY.__dict__, "steps": 60, "log_every": 1, "lr": 1e-3})
    nets, state = train_cyclegan(source, target, cfg)
    hist = state.history
    assert hist[-1]["step"] == 60 and len(hist) == 60
    first, last = (sum(h["loss_cycle"] for h in part) / len(part) for part in (hist[:5], hist[-5:]))
    assert last < 0.8 * first, (first, last)  # reconstruction is learned, not noise around the start
    assert translate(nets.G_st, source).shape == source.shape


def test_cyclegan_is_deterministic_and_resumes_exactly():
    source, target = _tiny_data()
    full, _ = train_cyclegan(source, target, TINY)
    again, _ = train_cyclegan(source, target, TINY)
    saved = {}
    train_cyclegan(source, target, TINY, checkpoint=lambda step, s: saved.setdefault(step, s), checkpoint_every=6)
    resumed, state = train_cyclegan(source, target, TINY, resume=saved[6])
    assert state.step == TINY.steps and [h["step"] for h in state.history] == [4, 8, 12]
    for name in ("G_st", "G_ts"):
        a, b, c = (getattr(n, name).state_dict() for n in (full, again, resumed))
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs between two identical runs"
            assert torch.allclose(a[k], c[k], atol=1e-6), f"{name}.{k} differs after resume"


def test_generator_file_round_trip(tmp_path):
    source, target = _tiny_data()
    nets, _ = train_cyclegan(source, target, TINY)
    save_generator(nets.G_st, TINY, 1, tmp_path / "G.pt")
    loaded = load_generator(tmp_path / "G.pt")
    assert torch.equal(translate(loaded, source), translate(nets.G_st, source))


def test_cyclegan_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same C, H, W"):
        train_cyclegan(torch.zeros(4, 1, 8, 8), torch.zeros(4, 3, 8, 8), TINY)


def test_the_learning_rate_follows_the_global_batch_as_lr_scaling_says():
    """`lr` is given for `lr_batch` images per step over all processes; a larger global batch takes
    it up by the square root of the ratio (sqrt), by the ratio (linear), or not (none)."""
    base = CycleGANConfig(lr=2e-4, lr_batch=4, batch_size=16)
    at = lambda scaling, world=1: scaled_lr(CycleGANConfig(**{**base.__dict__, "lr_scaling": scaling}), world)  # noqa: E731
    assert at("none") == 2e-4
    assert at("sqrt") == pytest.approx(4e-4) and at("linear") == pytest.approx(8e-4)
    assert at("sqrt", world=4) == pytest.approx(8e-4)  # four processes of 16: a global batch of 64
    with pytest.raises(ValueError, match="lr_scaling must be one of sqrt, linear, none; got 'cubic'"):
        at("cubic")
    # in training: both optimisers step with it, and the history logs it
    source, target = _tiny_data()
    cfg = CycleGANConfig(**{**TINY.__dict__, "steps": 2, "log_every": 1, "decay_from": 1.0, "lr_batch": 1, "lr_scaling": "sqrt"})
    _, state = train_cyclegan(source, target, cfg)
    assert [h["lr"] for h in state.history] == pytest.approx([cfg.lr * cfg.batch_size ** 0.5] * 2)
    unscaled = CycleGANConfig(**{**cfg.__dict__, "lr_scaling": "none"})
    assert train_cyclegan(source, target, unscaled)[1].history[0]["lr"] == pytest.approx(cfg.lr)


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("generator", ["resnet", "unet"])
def test_one_pass_over_two_batches_equals_two_passes(conditional, generator):
    """The GAN step runs each generator once over source and target images together, and each
    discriminator once over real and fake: per-image (instance) norms make that equal to two
    passes. A batch norm added to these networks would break it, and this test with it."""
    from augment.cyclegan import build_cyclegan

    cfg = CycleGANConfig(steps=1, batch_size=3, ngf=4, ndf=4, n_blocks=1, unet_downs=2, d_layers=1, generator=generator,
                         lambda_semantic=0.0, **({"conditional": True} if conditional else {}))
    nets = build_cyclegan(cfg, channels=3, num_classes=4)
    a, b = torch.rand(3, 3, 12, 12) * 2 - 1, torch.rand(3, 3, 12, 12) * 2 - 1
    ya, yb = torch.tensor([0, 1, 2]), torch.tensor([3, -1, 1])
    for net in (nets.G_st, nets.G_ts, nets.D_s, nets.D_t):
        net.train()
        takes_labels = conditional and (net is nets.G_st or net in (nets.D_s, nets.D_t))
        args = (lambda x, y: (x, y)) if takes_labels else (lambda x, y: (x,))
        together = net(*args(torch.cat([a, b]), torch.cat([ya, yb])))
        apart = torch.cat([net(*args(a, ya)), net(*args(b, yb))])
        torch.testing.assert_close(together, apart, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["cyclegan", "conditional_balanced"])
def test_uint8_images_train_exactly_as_their_float_values(kind):
    """train_gan hands training the stored uint8 images (a quarter of float32's memory, no float copy of
    a whole split); each batch, the semantic classifier's draws and the balanced labelling convert what
    they take. The weights must be those the same images as floats give, bit for bit."""
    import dataclasses

    from augment.images import to_tensor, to_uint8_tensor

    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (48, 8, 8, 1), generator=g, dtype=torch.uint8).numpy()
    src, tgt = pixels[:24], pixels[24:]
    labels = torch.arange(24) % 2
    cfg, kwargs = TINY, {}
    if kind == "conditional_balanced":
        cfg = dataclasses.replace(TINY, steps=6, conditional=True, lambda_semantic=1.0, semantic_threshold=1e9, semantic_width=4,
                                  semantic_batch_size=8, semantic_warmup=2, semantic_self_training=True, pseudo_labels="balanced",
                                  relabel_every=2)
        kwargs = {"source_labels": labels, "num_classes": 2, "target_labels": torch.tensor([0, 1] + [-1] * 22)}
    as_float, _ = train_cyclegan(to_tensor(src), to_tensor(tgt), cfg, **kwargs)
    as_uint8, _ = train_cyclegan(to_uint8_tensor(src), to_uint8_tensor(tgt), cfg, **kwargs)
    assert to_uint8_tensor(src).dtype == torch.uint8
    for name, net in as_float.named().items():
        other = getattr(as_uint8, name).state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, other[key]), f"{name}.{key} differs between uint8 and float inputs"


def test_translation_of_uint8_images_into_uint8_is_what_saving_the_float_translation_gives():
    """synthesize reads the source set as uint8 and keeps its translations as the 8-bit values
    it saves, batch by batch (a quarter of a float copy of the set each): the pixels written must
    be those of the float path, and uint8 inputs must translate as their float values do."""
    from augment.images import quantize, to_tensor, to_uint8, to_uint8_tensor

    pixels = torch.randint(0, 256, (10, 8, 8, 1), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy()
    source, target = _tiny_data()
    nets, _ = train_cyclegan(source, target, TINY)
    as_float = translate(nets.G_st, to_tensor(pixels), batch_size=4)
    as_uint8 = translate(nets.G_st, to_uint8_tensor(pixels), batch_size=4, uint8=True)
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (10, 1, 8, 8)
    assert torch.equal(translate(nets.G_st, to_uint8_tensor(pixels), batch_size=4), as_float)
    assert torch.equal(as_uint8, quantize(as_float))
    assert (to_uint8(as_uint8) == to_uint8(as_float)).all()
    assert translate(nets.G_st, to_uint8_tensor(pixels[:0]), uint8=True).dtype == torch.uint8
