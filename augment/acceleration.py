"""How a training loop uses its device: precision, memory layout, compilation, fused optimisers.

One object, chosen once from `runtime.precision` and `runtime.compile` and the device, so that the
same loop runs in float32 on a laptop CPU and in bf16, channels_last and `torch.compile`d on a GPU:

- bf16 autocast (no loss scaling needed: bf16 has float32's exponent range); losses stay float32;
- channels_last (NHWC) weights and inputs, the layout cuDNN's tensor-core convolutions want, for
  compiled networks: Inductor is also told to keep its own kernels (instance norms, reflection pads)
  in NHWC, which its heuristic would not do for these networks (measured on an H100 at 256 px, batch
  32: 123.6 pairs/s, against 114.0 compiled in NCHW and 103 with NHWC convolutions between NCHW
  Inductor kernels). Uncompiled (`runtime.compile: false`, and translation) they stay NCHW: ATen's
  instance norm and reflection pad work in NCHW, and NHWC convolutions between them paid a copy
  each way (53.9 pairs/s against 73.4; benchmarks/RESULTS.md);
- `torch.compile` of each network's forward (the uncompiled module keeps the weights, so state
  dicts and checkpoints are the same with or without it);
- fused Adam (one kernel per step instead of several per parameter) and cuDNN's autotuner.

`auto` turns all of these on for CUDA. On the CPU it takes fused Adam, and bf16 autocast where the
processor computes bf16 natively (AVX-512 BF16 or AMX: oneDNN's bf16 convolutions then run about
1.7x float32's speed at 64 px; without those units bf16 is emulated and slower). channels_last and
`torch.compile` were measured not to pay on the CPU (see benchmarks/RESULTS.md). The downstream classifier (`for_classifier`) also takes
channels_last on the CPU: a small VGG-style CNN with batch norm and max pooling, for which oneDNN's
NHWC kernels were measured a little faster.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from augment.adam import Adam, adamw


def native_bf16(device: torch.device | str) -> bool:
    """Whether bf16 pays on `device`: CUDA (as before this check existed: autocast takes bf16 on
    every card the pipeline targets), or a CPU with AVX-512 BF16 or AMX tiles (oneDNN's bf16
    kernels use them; elsewhere it emulates bf16, slower than float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own CPUID checks
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


@dataclass(frozen=True)
class Acceleration:
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    fused_optimizer: bool = False

    @classmethod
    def choose(cls, device: torch.device | str, *, precision: str = "auto", compile: str | bool = "auto") -> "Acceleration":
        """`precision`: auto | bf16 | fp32 (auto = bf16 where the device computes it natively);
        `compile`: auto | True | False (auto = on for CUDA, off on the CPU)."""
        device = torch.device(device)
        if precision not in ("auto", "bf16", "fp32") or compile not in ("auto", True, False):
            raise ValueError(f"precision must be auto, bf16 or fp32 and compile auto, true or false; got {precision!r}, {compile!r}")
        cuda = device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
        compiled = compile is True or (compile == "auto" and cuda)
        return cls(
            bf16=precision == "bf16" or (precision == "auto" and native_bf16(device)),
            # Uncompiled, ATen's instance norm and reflection pad work in NCHW, and NHWC convolutions
            # between them pay a layout copy each way: 53.9 pairs/s against 73.4 in NCHW on an H100.
            channels_last=cuda and compiled,
            compile=compiled,
            fused_optimizer=True,  # also on the CPU: measured 12-18% faster per GAN step at 16 px
        )

    @classmethod
    def for_classifier(cls, device: torch.device | str, precision: str = "auto") -> "Acceleration":
        """The downstream classifier's settings: channels_last and fused AdamW on every device (on
        the CPU, 5-15% per training step of the small_cnn at 16 px, batch 64, one thread, in the
        classifier's own loop; benchmarks/RESULTS.md), and bf16 autocast where `precision`
        (runtime.precision) is bf16, or auto on CUDA. Never compiled: a few hundred steps of a small
        network do not repay the compilation."""
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32; got {precision!r}")
        bf16 = precision == "bf16" or (precision == "auto" and torch.device(device).type == "cuda")
        return cls(bf16=bf16, channels_last=True, compile=False, fused_optimizer=True)

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def place(self, net: nn.Module, device: torch.device) -> nn.Module:
        """Move `net` to `device` (in channels_last when chosen); returns the callable to train with
        (compiled when chosen). The weights stay in `net`."""
        net.to(device)
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        if not self.compile:
            return net
        # Compiled in channels_last, Inductor is told to keep NHWC through its own kernels (norms,
        # pads, activations) too: its heuristic leaves networks with a narrow last convolution, as
        # both CycleGAN networks have, in NCHW, and every NHWC convolution then pays layout copies.
        # Static shapes: a stage trains at one size and batch (a graph each for the few batch
        # shapes of a step); a second image size in one process otherwise recompiled with symbolic
        # sizes, on which this layout-forced compile failed (tests/test_acceleration.py).
        return torch.compile(net, dynamic=False, options={"force_layout_optimization": True} if self.channels_last else None)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def adam(self, params, **kwargs) -> Adam:
        """torch.optim.Adam's update without its class, which imports torch's compiler (augment/adam.py)."""
        return Adam(params, fused=self.fused_optimizer, **kwargs)

    def adamw(self, params, **kwargs) -> Adam:
        """torch.optim.AdamW's, as `adam`."""
        return adamw(params, fused=self.fused_optimizer, **kwargs)
