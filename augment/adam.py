"""Adam and AdamW for the pipeline's stages, without torch.optim's Optimizer class.

That class imports torch's compiler (`torch._dynamo`) on its first call, from its step and
zero_grad wrappers, even where nothing is compiled: about 1.5 s per process on a 2-core machine,
as long as the whole training of a small classifier, once in each of a run's many classifier and
GAN stages. This one keeps each parameter's state itself and runs torch's own update,
`torch.optim.adam.adam`, the function `torch.optim.Adam.step` and `torch.optim.AdamW.step` call,
with the same state and the same choice of implementation (fused where asked, else torch's
default for the device): the weights it produces are torch.optim's, bit for bit, and its
`state_dict` is theirs, so checkpoints load into either (tests/test_adam.py). One learning rate
for all parameters (`lr`, set between steps for a schedule); no closure, no amsgrad.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch.optim.adam import adam


class Adam:
    """torch.optim.Adam, or torch.optim.AdamW with `decoupled=True` (weight decay applied to the
    weights directly, not through the gradient)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False, fused: bool = False):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        self.lr, self.betas, self.eps, self.weight_decay, self.decoupled = lr, tuple(betas), eps, weight_decay, decoupled
        self.fused = fused or None  # None: torch's default for the device, as torch.optim's fused=None
        self.state: dict[int, dict[str, torch.Tensor]] = {}  # by the parameter's index, as in state_dict

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _state_of(self, i: int) -> dict[str, torch.Tensor]:
        """exp_avg, exp_avg_sq and step as torch.optim.Adam initialises them: the step count a float32
        scalar on the CPU (float64 where that is torch's default dtype), on the parameter's device for
        the fused update."""
        if i not in self.state:
            p = self.params[i]
            if self.fused:
                step = torch.zeros((), dtype=torch.float32, device=p.device)
            else:
                step = torch.tensor(0.0, dtype=torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32)
            self.state[i] = {"step": step, "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return self.state[i]

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        states = [self._state_of(i) for i in live]
        adam(params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [],
             [s["step"] for s in states], foreach=None, fused=self.fused, has_complex=any(torch.is_complex(p) for p in params),
             decoupled_weight_decay=self.decoupled, amsgrad=False, beta1=self.betas[0], beta2=self.betas[1], lr=self.lr,
             weight_decay=self.weight_decay, eps=self.eps, maximize=False)

    def state_dict(self) -> dict:
        """torch.optim.Adam's (or AdamW's) layout: one param group, the state by parameter index."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay, "amsgrad": False,
                 "maximize": False, "foreach": None, "capturable": False, "differentiable": False, "fused": self.fused,
                 "decoupled_weight_decay": self.decoupled, "params": list(range(len(self.params)))}
        return {"state": {i: dict(s) for i, s in sorted(self.state.items())}, "param_groups": [group]}

    def load_state_dict(self, saved: dict) -> None:
        """A state_dict of this class or of torch.optim.Adam/AdamW over the same parameters, in the same
        order; its state is cast to each parameter's device (and floating dtype), as torch does, and
        its learning rate, betas, eps and weight decay are taken over."""
        groups = saved["param_groups"]
        count = sum(len(g["params"]) for g in groups)
        if len(groups) != 1 or count != len(self.params):
            raise ValueError(f"the saved optimizer state has {len(groups)} param group(s) of {count} parameters; this optimizer "
                             f"has one group of {len(self.params)}")
        group = groups[0]
        index = {saved_id: i for i, saved_id in enumerate(group["params"])}
        self.lr, self.betas, self.eps, self.weight_decay = group["lr"], tuple(group["betas"]), group["eps"], group["weight_decay"]
        self.state = {}
        for saved_id, values in saved["state"].items():
            p = self.params[index[saved_id]]
            self.state[index[saved_id]] = {
                key: (value.to(dtype=torch.float32, device=p.device) if self.fused else value) if key == "step" else
                value.to(dtype=p.dtype if p.is_floating_point() else value.dtype, device=p.device)
                for key, value in values.items()}


def adamw(params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 1e-2, **kwargs) -> Adam:
    """torch.optim.AdamW's update (its default weight decay too)."""
    return Adam(params, lr=lr, weight_decay=weight_decay, decoupled=True, **kwargs)
