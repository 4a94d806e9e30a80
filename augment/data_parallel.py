"""Data-parallel training across processes (e.g. under `torchrun`), shared by the GAN and the classifier.

Each process draws its own batches; these helpers keep the replicas identical: one start (rank 0's
weights), the mean gradient before every optimiser step, and the mean batch-norm statistics where a
network reads in eval mode. Without an initialised process group (one process) each is a no-op.
"""
from __future__ import annotations

import math

import torch
from torch import nn

# global batch / the batch `lr` is given for -> learning-rate factor
LR_SCALINGS = {"sqrt": math.sqrt, "linear": lambda ratio: ratio, "none": lambda ratio: 1.0}


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def lr_factor(scaling: str, ratio: float) -> float:
    """How far the learning rate moves for a global batch `ratio` times the one it is given for:
    by the square root ("sqrt", the rule for Adam: Malladi et al. 2022), by the ratio ("linear",
    Goyal et al. 2017's rule for SGD), or not at all ("none")."""
    if scaling not in LR_SCALINGS:
        raise ValueError(f"lr_scaling must be one of {', '.join(LR_SCALINGS)}; got {scaling!r}")
    return LR_SCALINGS[scaling](ratio)


def sync_initial_weights(nets: list[nn.Module]) -> None:
    """Every process starts from rank 0's weights and buffers."""
    for net in nets:
        for t in (*net.parameters(), *net.buffers()):
            torch.distributed.broadcast(t.data, src=0)


def average_in_place(tensors: list[torch.Tensor], world: int) -> None:
    """All-reduce `tensors` (of one dtype) into their mean over processes, in one flat buffer."""
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients(nets: list[nn.Module], world: int) -> None:
    """All-reduce the gradients of `nets` into their mean over processes (one flat buffer per call)."""
    average_in_place([p.grad for net in nets for p in net.parameters() if p.grad is not None], world)


def average_statistics(net: nn.Module, world: int) -> None:
    """Batch-norm running statistics into their mean over processes: each process normalised its own
    batches, and a network that reads in eval mode must read alike everywhere."""
    average_in_place([b for b in net.buffers() if b.is_floating_point()], world)
