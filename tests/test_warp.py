"""The learned affine warp in front of the generators (`gan.<gan>.warp: affine`)."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from augment.cyclegan import (
    CycleGANConfig,
    build_any_generator,
    build_cyclegan,
    load_generator,
    save_generator,
    train_cyclegan,
    translate,
)
from models.generators import UnetGenerator
from models.warp import AffineWarp, Warped
from pipelines.config import ParamsError, parse_params
from tests.test_config import _raw


pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(n: int, size: int, scale: float, seed: int) -> torch.Tensor:
    """Bright Gaussian blobs on a dark background, `scale` times the width of the image's middle."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    cx, cy = (torch.rand(2, n, 1, 1, generator=g) - 0.5) * 0.2
    sx, sy = 0.25 * scale * (1 + 0.5 * torch.rand(2, n, 1, 1, generator=g))
    return (torch.exp(-((xs - cx) ** 2 / sx**2 + (ys - cy) ** 2 / sy**2)) * 2 - 1).unsqueeze(1)


def test_a_new_warp_is_the_identity():
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    warp = AffineWarp(3)
    torch.testing.assert_close(warp.theta(x), torch.eye(2, 3).expand(5, 2, 3))
    torch.testing.assert_close(warp(x), x, rtol=0, atol=1e-5)
    inner = UnetGenerator(3, 3, ngf=4, num_downs=2)
    torch.testing.assert_close(Warped(inner, 3)(x), inner(x), rtol=0, atol=1e-5)


def test_the_warp_stays_within_its_bounds():
    warp = AffineWarp(1)
    with torch.no_grad():
        warp.head[-1].bias.copy_(torch.tensor([50.0, -50.0, 0, 0, 50.0, -50.0]))
    theta = warp.theta(torch.zeros(2, 1, 16, 16))[0]
    # The sampling grid shrinks by the content's growth: x grows 2x (samples at half the spacing),
    # y shrinks to 1/2 (samples at twice the spacing); shifts stop at half the image's half-width.
    torch.testing.assert_close(theta, torch.tensor([[0.5, 0.0, 0.5], [0.0, 2.0, -0.5]]))


def test_the_warp_learns_to_reframe_small_objects_into_large_ones():
    """What a generator behind it gains: a content-moving change (objects filling the frame) is
    learned by the warp from a pixel loss, which a convolution that keeps every pixel in place
    could only paint over."""
    torch.manual_seed(0)
    small, large = _blobs(64, 16, 0.5, seed=1), _blobs(64, 16, 1.0, seed=1)
    warp = AffineWarp(1)
    opt = torch.optim.Adam(warp.parameters(), lr=3e-3)
    before = F.l1_loss(warp(small), large).item()
    for _ in range(150):
        loss = F.l1_loss(warp(small), large)
        opt.zero_grad()
        loss.backward()
        opt.step()
    theta = warp.theta(small).detach()
    assert loss.item() < 0.5 * before, (before, loss.item())
    assert (theta[:, 0, 0] < 0.75).all() and (theta[:, 1, 1] < 0.75).all(), theta[:4]  # zoomed in, both axes


@pytest.mark.parametrize("conditional", [False, True])
def test_a_warped_generator_trains_saves_and_reloads(tmp_path, conditional):
    g = torch.Generator().manual_seed(0)
    source, target = torch.rand(24, 1, 8, 8, generator=g) * 2 - 1, torch.rand(24, 1, 8, 8, generator=g) * 2 - 1
    labels = torch.arange(24) % 3
    cfg = CycleGANConfig(steps=4, batch_size=4, ngf=4, n_blocks=1, unet_downs=2, generator="unet", ndf=4, d_layers=1,
                         pool_size=2, log_every=2, warp="affine", conditional=conditional,
                         lambda_semantic=1.0 if conditional else 0.0, semantic_width=4, semantic_batch_size=8)
    start = build_cyclegan(cfg, 1, num_classes=3)
    nets, _ = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=3)
    assert isinstance(nets.G_st, Warped) and isinstance(nets.G_ts, Warped)
    moved = [not torch.equal(a, b) for a, b in zip(start.G_st.warp.parameters(), nets.G_st.warp.parameters())]
    assert any(moved), "the warp's weights never changed: it gets no gradient"
    save_generator(nets.G_st, cfg, 1, tmp_path / "G.pt", num_classes=3 if conditional else 0)
    loaded = load_generator(tmp_path / "G.pt")
    assert isinstance(loaded, Warped)
    y = labels if conditional else None
    assert torch.equal(translate(loaded, source, y), translate(nets.G_st, source, y))


def test_warped_networks_give_one_pass_what_two_give():
    cfg = dataclasses.replace(CycleGANConfig(), ngf=4, ndf=4, unet_downs=2, generator="unet", d_layers=1, warp="affine")
    net = build_cyclegan(cfg, channels=3).G_st
    with torch.no_grad():  # a warp that is not the identity
        net.warp.head[-1].weight.normal_(0, 0.05)
    a, b = torch.rand(3, 3, 12, 12) * 2 - 1, torch.rand(3, 3, 12, 12) * 2 - 1
    torch.testing.assert_close(net(torch.cat([a, b])), torch.cat([net(a), net(b)]), rtol=1e-4, atol=1e-5)


def test_an_unknown_warp_is_refused_by_name():
    raw = _raw()
    raw["gan"]["cgan"]["warp"] = "perspective"
    with pytest.raises(ParamsError, match=r"gan\.cgan\.warp: .*'none'.*'affine'"):
        parse_params(raw)
    # A generator file naming a warp this code does not know (a newer version's) is refused as clearly.
    with pytest.raises(ValueError, match="Unknown warp 'perspective'. Valid: none, affine"):
        build_any_generator("unet", warp="perspective", in_channels=1, out_channels=1, ngf=4, num_downs=2)


def test_a_diverging_warped_gan_stops_with_a_message_instead_of_crashing():
    """Weights gone NaN put NaN in the warp's sampling grid, and torch's CPU grid_sample backward then
    crashed the process (SIGSEGV, no message) before the loop read its losses. Run in a child
    process, where such a crash is an exit status and not the end of the test session."""
    import subprocess
    import sys

    from tests.conftest import REPO

    script = """
import math, torch
from augment.cyclegan import CycleGANConfig, train_cyclegan
g = torch.Generator().manual_seed(0)
source, target = torch.rand(24, 1, 8, 8, generator=g) * 2 - 1, torch.rand(24, 1, 8, 8, generator=g) * 2 - 1
cfg = CycleGANConfig(steps=6, batch_size=4, ngf=4, n_blocks=1, unet_downs=2, generator="unet", ndf=4, d_layers=1,
                     pool_size=2, log_every=3, warp="affine", lambda_semantic=0.0, lr=math.inf)
try:
    train_cyclegan(source, target, cfg)
except FloatingPointError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert "losses became non-finite at step 3" in out.stdout and "a lower lr" in out.stdout, out.stdout
