"""AdamW for the classifier stages, without torch.optim's Optimizer class.

That class imports torch's compiler (`torch._dynamo`) on its first call, from its step and
zero_grad wrappers, even where nothing is compiled: about 1.5 s per process on a 2-core machine,
as long as the whole training of a small classifier, once in each of a run's many classifier
stages. This one keeps each parameter's state itself and runs torch's own update,
`torch.optim.adam.adam` with decoupled weight decay, the function `torch.optim.AdamW.step` calls,
with the same state and the same choice of implementation (fused where asked, else torch's
default for the device): the weights it produces are torch.optim.AdamW's, bit for bit
(tests/test_adamw.py). For the few hundred steps of a classifier: no closure, no state_dict, no
param groups beyond one learning rate.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch.optim.adam import adam


class AdamW:
    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 1e-2,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, fused: bool = False):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("AdamW got no parameter that requires grad")
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.fused = fused or None  # None: torch's default for the device, as torch.optim.AdamW(fused=None)
        self._state: dict[torch.nn.Parameter, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _state_of(self, p: torch.nn.Parameter) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(exp_avg, exp_avg_sq, step) as torch.optim.Adam initialises them: the step count a
        float32 scalar on the CPU, or on the parameter's device for the fused update."""
        if p not in self._state:
            dtype = torch.float64 if torch.get_default_dtype() == torch.float64 and not self.fused else torch.float32
            step = torch.zeros((), dtype=dtype, device=p.device if self.fused else "cpu")
            self._state[p] = (torch.zeros_like(p, memory_format=torch.preserve_format),
                              torch.zeros_like(p, memory_format=torch.preserve_format), step)
        return self._state[p]

    @torch.no_grad()
    def step(self) -> None:
        with_grad = [p for p in self.params if p.grad is not None]
        if not with_grad:
            return
        states = [self._state_of(p) for p in with_grad]
        adam(with_grad, [p.grad for p in with_grad], [s[0] for s in states], [s[1] for s in states], [], [s[2] for s in states],
             foreach=None, fused=self.fused, has_complex=any(torch.is_complex(p) for p in with_grad), decoupled_weight_decay=True,
             amsgrad=False, beta1=self.betas[0], beta2=self.betas[1], lr=self.lr, weight_decay=self.weight_decay,
             eps=self.eps, maximize=False)
