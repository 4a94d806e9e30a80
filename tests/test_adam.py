"""augment.adam: torch.optim.Adam's and AdamW's weights and state_dict, bit for bit, without
importing torch's compiler."""
import io
import subprocess
import sys

import pytest
import torch
from torch import nn

from augment.adam import Adam, adamw
from tests.conftest import REPO

KINDS = {  # ours, torch's, with the same settings
    "adam": (lambda params, fused: Adam(params, lr=1e-2, betas=(0.5, 0.999), fused=fused),
             lambda params, fused: torch.optim.Adam(params, lr=1e-2, betas=(0.5, 0.999), fused=fused or None)),
    "adamw": (lambda params, fused: adamw(params, lr=1e-2, weight_decay=5e-4, betas=(0.8, 0.99), eps=1e-7, fused=fused),
              lambda params, fused: torch.optim.AdamW(params, lr=1e-2, weight_decay=5e-4, betas=(0.8, 0.99), eps=1e-7, fused=fused or None)),
}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def _set_lr(opt, lr: float) -> None:
    if isinstance(opt, Adam):
        opt.lr = lr
    else:
        for group in opt.param_groups:
            group["lr"] = lr


def _train(net: nn.Module, opt, steps: range) -> list[torch.Tensor]:
    for step in steps:
        gen = torch.Generator().manual_seed(step)
        _set_lr(opt, 1e-2 * (1 - step / 40))  # a schedule, as the classifier's and the GAN's: a new lr every step
        x, y = torch.randn(8, 1, 8, 8, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_weights_are_torch_optims_bit_for_bit(one_thread, kind, fused):
    ours, torchs = KINDS[kind]
    net_a, net_b = _net(), _net()
    trained = _train(net_a, ours(net_a.parameters(), fused), range(30))
    assert _same(trained, _train(net_b, torchs(net_b.parameters(), fused), range(30)))
    assert not torch.equal(trained[0], _net()[0].weight)  # it trained


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_checkpoint_resumes_in_either_and_gives_the_uninterrupted_weights(one_thread, kind):
    """A GAN checkpoint holds the optimizers' state_dicts: those of checkpoints written with torch.optim
    load here, and these load into torch.optim."""
    ours, torchs = KINDS[kind]
    net = _net()
    whole = _train(net, ours(net.parameters(), True), range(30))
    for first, second in ((ours, torchs), (torchs, ours)):
        net = _net()
        opt = first(net.parameters(), True)
        _train(net, opt, range(15))
        saved = {k: v.clone() for k, v in net.state_dict().items()}, opt.state_dict()
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        buffer.seek(0)
        weights, state = torch.load(buffer)
        net = _net()
        net.load_state_dict(weights)
        opt = second(net.parameters(), True)
        opt.load_state_dict(state)
        assert _same(_train(net, opt, range(15, 30)), whole), (first, second)


def test_a_parameter_without_a_gradient_is_left_alone(one_thread):
    net = _net()
    frozen = net[4].weight.detach().clone()
    opt = adamw(net.parameters(), lr=1e-2, weight_decay=0.1)
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    net[4].weight.grad = None
    opt.step()
    assert torch.equal(net[4].weight, frozen) and not torch.equal(net[0].weight, _net()[0].weight)


def test_a_state_dict_of_other_parameters_is_refused():
    opt = Adam(_net().parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="param group"):
        opt.load_state_dict(Adam(nn.Linear(2, 2).parameters(), lr=1e-3).state_dict())


def test_a_classifier_and_a_gan_train_without_importing_torchs_compiler():
    """torch.optim's Optimizer imports torch._dynamo on its first step: about 1.5 s of every classifier
    and GAN stage."""
    code = (
        "import sys, dataclasses, torch\n"
        "from augment.classify import ClassifierConfig, train_classifier\n"
        "from augment.cyclegan import CycleGANConfig, train_cyclegan\n"
        "from augment.mixing import LabeledImages, MixedBatches\n"
        "x = torch.randint(0, 256, (64, 1, 12, 12), dtype=torch.uint8); y = torch.arange(64) % 4\n"
        "batches = MixedBatches(parts={'source': (LabeledImages(x, y), 1.0)}, batch_size=16, seed=0)\n"
        "train_classifier(batches, ClassifierConfig(width=4, steps=3), in_channels=1, num_classes=4, seed=0)\n"
        "cfg = dataclasses.replace(CycleGANConfig(), steps=2, batch_size=4, ngf=4, ndf=4, n_blocks=1, unet_downs=2, d_layers=1,\n"
        "                          semantic_width=4, semantic_batch_size=8, semantic_warmup=2, log_every=1)\n"
        "train_cyclegan(x, x.flip(-1), cfg, source_labels=y, num_classes=4)\n"
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
