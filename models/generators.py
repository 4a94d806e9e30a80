"""Image-to-image generators.

`ResnetGenerator` follows Zhu et al. 2017 (CycleGAN), itself after Johnson et al. 2016:
c7s1-ngf, two stride-2 downsamplings, `n_blocks` residual blocks, two upsamplings, c7s1-out.
`UnetGenerator` is the pix2pix U-Net (Isola et al. 2017), the other generator CycleGAN ships.
In the paper's names, the source->target generator is G and the target->source one is F.

`ClassConditional` wraps either one so that it is told the class it translates for, as
one-hot label planes concatenated to the image (the input conditioning of Mirza & Osindero 2014,
pix2pix-style: y is broadcast over every pixel).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.norms import InstanceNorm
from models.sizes import UNET_DOWNS, check_generator_name, generator_size_problem  # noqa: F401 - re-exported


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """N(0, 0.02) conv weights and zero biases, as in the CycleGAN and DCGAN papers."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def check_class_labels(labels: torch.Tensor, batch: int, num_classes: int, owner: str) -> None:
    """Class labels of a conditional network: (batch,) integers in [-1, num_classes), -1 = unknown."""
    if labels.dim() != 1 or labels.shape[0] != batch or labels.dtype.is_floating_point:
        raise ValueError(f"{owner} needs integer labels of shape ({batch},), got {labels.dtype} of shape {tuple(labels.shape)}")
    bad = (labels < -1) | (labels >= num_classes)
    if labels.is_cuda:  # checked on the device: a Python `if` here would stall the GPU every call
        torch._assert_async(~bad.any(), f"{owner} labels must lie in [-1, {num_classes}) (-1 = unknown)")
        return
    if bad.any():
        raise ValueError(
            f"{owner} labels must lie in [-1, {num_classes}) (-1 = unknown), "
            f"got min {labels.min().item()}, max {labels.max().item()}"
        )


def _norm(channels: int) -> nn.Module:
    # Instance norm: per-image statistics, so batch size (and DDP sharding) does not change the output;
    # kept in the input's memory layout (models/norms.py).
    return InstanceNorm(channels)


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


class UnetGenerator(nn.Module):
    """pix2pix U-Net (Isola et al. 2017): (B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1].

    `num_downs` stride-2 4x4 convs halve the image down to (H, W) / 2**num_downs; mirrored
    4x4 transposed convs double it back, each level's decoder input being the previous decoder
    output concatenated with the encoder output of the same resolution (the skip connections,
    which let low-level structure such as edges bypass the bottleneck). Level i is
    ngf * min(2**i, 8) channels wide. H and W must be divisible by 2**num_downs.

    With num_downs=8 and a 256 px input this is the paper's "U-Net 256"; the innermost map is 1x1.
    Dropout, which pix2pix uses as its noise source, is left out, as CycleGAN does by default.
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, num_downs: int = UNET_DOWNS):
        super().__init__()
        if in_channels < 1 or out_channels < 1 or ngf < 1 or num_downs < 1:
            raise ValueError(
                f"UnetGenerator needs positive channels, ngf and num_downs, got in_channels={in_channels}, "
                f"out_channels={out_channels}, ngf={ngf}, num_downs={num_downs}"
            )
        self.num_downs = num_downs
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]
        inner = num_downs - 1
        # Encoder level i: (B, widths[i-1], h, w) -> (B, widths[i], h/2, w/2). The outermost conv sees
        # the image itself, so it has no activation before it and no norm after it. The innermost
        # output is 1x1 at the smallest allowed input, where instance norm cannot work (it raises
        # on a single spatial element), so it has no norm either, like pix2pix's innermost block.
        self.down = nn.ModuleList()
        for i in range(num_downs):
            conv = nn.Conv2d(in_channels if i == 0 else widths[i - 1], widths[i], 4, stride=2, padding=1)
            if i == 0:
                self.down.append(conv)
            else:
                # Not in-place: the map is also what the skip connection carries. The decoder's
                # ReLU then gives what pix2pix's in-place LeakyReLU does: ReLU(LeakyReLU(a)) = ReLU(a).
                layers = [nn.LeakyReLU(0.2), conv]
                if i < inner:
                    layers.append(_norm(widths[i]))
                self.down.append(nn.Sequential(*layers))
        # Decoder level i: (B, widths[i] (innermost) or 2 * widths[i] (with the skip), h, w)
        # -> (B, widths[i-1] or out_channels, 2h, 2w); up[i] mirrors down[i].
        self.up = nn.ModuleList()
        for i in range(num_downs):
            in_ch = widths[i] if i == inner else 2 * widths[i]
            if i == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(in_ch, out_channels, 4, stride=2, padding=1), nn.Tanh()]
            else:
                layers = [nn.ReLU(), nn.ConvTranspose2d(in_ch, widths[i - 1], 4, stride=2, padding=1), _norm(widths[i - 1])]
            self.up.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.num_downs
        if x.shape[-1] % factor or x.shape[-2] % factor or min(x.shape[-2:]) < factor:
            raise ValueError(
                f"UnetGenerator with num_downs={self.num_downs} needs H and W divisible by {factor}, "
                f"got {tuple(x.shape[-2:])}"
            )
        skips = []
        for down in self.down:  # skips[i]: (B, widths[i], H / 2**(i+1), W / 2**(i+1))
            x = down(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x


GENERATORS = {"resnet": ResnetGenerator, "unet": UnetGenerator}


def build_generator(name: str, **kwargs) -> nn.Module:
    check_generator_name(name)
    return GENERATORS[name](**kwargs)


class ClassConditional(nn.Module):
    """A generator told which class it translates for: (B, C, H, W), (B,) labels -> generator output.

    `generator` must take C + num_classes input channels: the image, then one constant plane
    per class, 1 for the row's label and 0 elsewhere. Label -1 means "unknown" and gives all-zero
    planes, so the same generator also translates images whose class is not known.

    The state dict is the wrapped generator's under the prefix "generator." and nothing else (the
    label planes are built per call, not stored), so checkpoints do not depend on num_classes
    being a buffer or on how the planes are made.
    """

    def __init__(self, generator: nn.Module, num_classes: int):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"ClassConditional needs num_classes >= 1, got {num_classes}")
        self.generator = generator
        self.num_classes = num_classes

    def label_planes(self, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(B,) int64 in [-1, num_classes) -> (B, num_classes, H, W) one-hot planes shaped and typed as `like`."""
        check_class_labels(labels, like.shape[0], self.num_classes, "ClassConditional")
        known = (labels >= 0).unsqueeze(1)
        onehot = F.one_hot(labels.clamp(min=0).long(), self.num_classes) * known  # (B, K); unknown rows all 0
        h, w = like.shape[-2:]
        return onehot.to(like.dtype)[:, :, None, None].expand(-1, -1, h, w)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"ClassConditional needs (B, C, H, W) images, got shape {tuple(x.shape)}")
        return self.generator(torch.cat([x, self.label_planes(labels, x)], dim=1))


def build_conditional_generator(name: str, *, in_channels: int, out_channels: int, num_classes: int, **arch) -> ClassConditional:
    """`build_generator(name, ...)` with in_channels + num_classes inputs, wrapped in `ClassConditional`.

    `in_channels` counts the image channels only. Its signature is `build(name, **arch)`, so it
    rebuilds what `augment.io.save_module` stored with arch = {"name", "in_channels",
    "out_channels", "num_classes", ...generator arguments}.
    """
    if num_classes < 1:
        raise ValueError(f"build_conditional_generator needs num_classes >= 1, got {num_classes}")
    inner = build_generator(name, in_channels=in_channels + num_classes, out_channels=out_channels, **arch)
    return ClassConditional(inner, num_classes)
