"""augment.adamw.AdamW: torch.optim.AdamW's weights, bit for bit, without importing torch's compiler."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from augment.adamw import AdamW
from tests.conftest import REPO


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def _train(net: nn.Module, opt, set_lr, steps: int = 25) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    for step in range(steps):
        set_lr(opt, 1e-2 * (1 - step / steps))  # as the classifier's cosine schedule: a new lr every step
        x, y = torch.randn(8, 1, 8, 8, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def _set_group_lr(opt, lr):
    for group in opt.param_groups:
        group["lr"] = lr


@pytest.mark.parametrize("fused", [False, True])
def test_the_weights_are_torch_adamws_bit_for_bit(one_thread, fused):
    kwargs = {"weight_decay": 5e-4, "betas": (0.8, 0.99), "eps": 1e-7}
    net_a, net_b = _net(0), _net(0)
    ours = _train(net_a, AdamW(net_a.parameters(), lr=1e-2, fused=fused, **kwargs), lambda o, lr: setattr(o, "lr", lr))
    torchs = _train(net_b, torch.optim.AdamW(net_b.parameters(), lr=1e-2, fused=fused or None, **kwargs), _set_group_lr)
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))
    assert not torch.equal(ours[0], _net(0)[0].weight.detach())  # it trained


def test_a_parameter_without_a_gradient_is_left_alone(one_thread):
    net = _net(0)
    frozen = net[4].weight.detach().clone()
    opt = AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    net[4].weight.grad = None
    opt.step()
    assert torch.equal(net[4].weight, frozen) and not torch.equal(net[0].weight, _net(0)[0].weight)


def test_a_classifier_trains_without_importing_torchs_compiler():
    """torch.optim's Optimizer imports torch._dynamo on its first step: 1.5 s of every classifier stage."""
    code = (
        "import sys, torch\n"
        "from augment.classify import ClassifierConfig, train_classifier\n"
        "from augment.mixing import LabeledImages, MixedBatches\n"
        "data = LabeledImages(torch.randint(0, 256, (64, 1, 12, 12), dtype=torch.uint8), torch.arange(64) % 4)\n"
        "batches = MixedBatches(parts={'source': (data, 1.0)}, batch_size=16, seed=0)\n"
        "train_classifier(batches, ClassifierConfig(width=4, steps=3), in_channels=1, num_classes=4, seed=0)\n"
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
