"""Network shapes, losses, the image pool, and CycleGAN training invariants."""
import pytest
import torch

from augment.cyclegan import CycleGANConfig, load_generator, save_generator, train_cyclegan, translate
from augment.image_pool import ImagePool
from models.classifiers import SmallCNN, build_classifier
from models.discriminators import PatchDiscriminator
from models.generators import ResnetGenerator, build_generator
from models.losses import cycle_loss, gan_loss, identity_loss, lsgan_loss


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
    assert m.features(x).shape == (4, 16)


def test_registries_name_the_valid_choices():
    with pytest.raises(ValueError, match="Valid: resnet"):
        build_generator("unet9000")
    with pytest.raises(ValueError, match="Valid: small_cnn"):
        build_classifier("vit")
    with pytest.raises(ValueError, match="Valid: lsgan, vanilla"):
        gan_loss("wgan")


def test_losses():
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert lsgan_loss(ones, True) == 0 and lsgan_loss(zeros, False) == 0
    assert lsgan_loss(zeros, True) == 1
    assert gan_loss("vanilla")(torch.full((2, 1), 20.0), True) < 1e-6
    x = torch.rand(2, 1, 8, 8)
    assert cycle_loss(x, x) == 0 and identity_loss(x, x + 0.5).item() == pytest.approx(0.5)


def test_image_pool_fills_then_mixes_history():
    pool = ImagePool(size=4, seed=0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returns what it got
    new = torch.full((64, 1, 1, 1), 100.0)
    out = pool.query(new)
    old = (out < 100).sum().item()
    assert 0 < old < 64  # about half from the history once full
    assert ImagePool(size=0).query(new) is not new


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(32, 1, 8, 8, generator=g) * 2 - 1
    target = (torch.rand(32, 1, 8, 8, generator=g) * 2 - 1).clamp(0, 1)
    return source, target


TINY = CycleGANConfig(steps=12, batch_size=4, ngf=4, n_blocks=1, ndf=4, d_layers=1, pool_size=5, log_every=4)


def test_cyclegan_trains_and_cycle_loss_falls():
    source, target = _tiny_data()
    cfg = CycleGANConfig(**{**TINY.__dict__, "steps": 60, "log_every": 10, "lr": 2e-3})
    nets, state = train_cyclegan(source, target, cfg)
    hist = state.history
    assert hist[-1]["step"] == 60 and len(hist) == 6
    assert hist[-1]["loss_cycle"] < hist[0]["loss_cycle"]
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
