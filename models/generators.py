"""Image-to-image generators.

`ResnetGenerator` follows Zhu et al. 2017 (CycleGAN), itself after Johnson et al. 2016:
c7s1-ngf, two stride-2 downsamplings, `n_blocks` residual blocks, two upsamplings, c7s1-out.
In the paper's names, the source->target generator is G and the target->source one is F.
"""
from __future__ import annotations

import torch
from torch import nn


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """N(0, 0.02) conv weights and zero biases, as in the CycleGAN and DCGAN papers."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def _norm(channels: int) -> nn.Module:
    # Instance norm: per-image statistics, so batch size (and DDP sharding) does not change the output.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]; H, W divisible by 4."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        if in_channels < 1 or out_channels < 1 or ngf < 1 or n_blocks < 0:
            raise ValueError(
                f"ResnetGenerator needs positive channels and ngf and n_blocks >= 0, got "
                f"in_channels={in_channels}, out_channels={out_channels}, ngf={ngf}, n_blocks={n_blocks}"
            )
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), _norm(ngf), nn.ReLU(True),
        ]
        for mult in (1, 2):  # (B, ngf, H, W) -> (B, 4ngf, H/4, W/4)
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), _norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # back to (B, ngf, H, W)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                _norm(ngf * mult // 2), nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"ResnetGenerator needs H and W divisible by 4, got {tuple(x.shape[-2:])}")
        return self.net(x)


GENERATORS = {"resnet": ResnetGenerator}


def build_generator(name: str, **kwargs) -> nn.Module:
    if name not in GENERATORS:
        raise ValueError(f"Unknown generator {name!r}. Valid: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name](**kwargs)
