"""Training and applying the downstream classifier."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from augment.acceleration import Acceleration
from augment.data_parallel import average_gradients, average_in_place, average_statistics, lr_factor, rank_and_world, sync_initial_weights
from augment.images import as_float
from augment.io import load_module, save_module
from augment.mixing import MixedBatches
from models.classifiers import build_classifier


@dataclass(frozen=True)
class ClassifierConfig:
    """One downstream classifier's training settings, for calling `train_classifier` from Python;
    the pipeline's defaults are params.yaml's `classifier` section."""

    model: str = "small_cnn"
    width: int = 32  # channels of the first conv block
    steps: int = 600  # optimiser updates
    batch_size: int = 64
    lr: float = 1e-3  # AdamW, cosine-decayed to 0; for one process's batch
    lr_scaling: str = "sqrt"  # with N processes (global batch N x batch_size): lr x sqrt(N), x N ("linear") or as is ("none")
    weight_decay: float = 5e-4
    log_every: int = 100


def train_classifier(
    batches: MixedBatches,
    cfg: ClassifierConfig,
    *,
    in_channels: int,
    num_classes: int,
    seed: int,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    on_log: Callable[[int, dict], None] | None = None,
) -> nn.Module:
    """Train a classifier on `batches`. Data-parallel when a torch.distributed process group is up
    (e.g. under `torchrun`): each process draws its own `batches` (seed them apart), every process
    starts from rank 0's weights, gradients are averaged before each optimiser step and batch-norm
    statistics at the end, so every replica returns the same model; only rank 0 calls `on_log`,
    with the loss averaged over processes. `precision`: runtime.precision (`Acceleration.for_classifier`)."""
    rank, world = rank_and_world()
    torch.manual_seed(seed)
    device = torch.device(device)
    accel = Acceleration.for_classifier(device, precision)
    model = build_classifier(cfg.model, in_channels=in_channels, num_classes=num_classes, width=cfg.width)
    accel.place(model, device)
    if world > 1:
        sync_initial_weights([model])
    lr = cfg.lr * lr_factor(cfg.lr_scaling, world)
    opt = accel.adamw(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    model.train()
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        opt.lr = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / cfg.steps))
        x, y = batches.next()
        with accel.autocast(device):
            loss = F.cross_entropy(model(accel.inputs(x.to(device))).float(), y.to(device))
        opt.zero_grad()
        loss.backward()
        average_gradients([model], world)
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            logged = loss.detach().float().reshape(1)
            average_in_place([logged], world)  # every process takes part, whoever logs
            value = logged.item()
            if not math.isfinite(value):  # every process sees the same average, so all stop together
                # an lr of 10 trained to NaN weights, and the classifier was saved, read every image as class 0
                # and was reported as a measured arm
                raise FloatingPointError(f"the classifier's loss became non-finite at step {step} ({value}): the training "
                                         "diverged; a lower learning rate usually helps")
            if on_log is not None and rank == 0:
                on_log(step, {"loss": value, "seconds": time.perf_counter() - t0})
    average_statistics(model, world)
    return model.eval()


def save_classifier(model: nn.Module, cfg: ClassifierConfig, *, in_channels: int, num_classes: int, path) -> None:
    """Weights plus constructor arguments, so the file rebuilds without params.yaml."""
    save_module(model, {"name": cfg.model, "in_channels": in_channels, "num_classes": num_classes, "width": cfg.width}, path)


def load_classifier(path, *, device: str | torch.device = "cpu") -> nn.Module:
    return load_module(path, build_classifier, device=device)


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 512, device: str | torch.device = "cpu",
            precision: str = "auto") -> torch.Tensor:
    """(N, C, H, W) float in [-1, 1] or uint8 -> (N,) predicted class indices, in the layout and
    precision the classifier trains in (uint8 batches are converted on the device)."""
    device = torch.device(device)
    accel = Acceleration.for_classifier(device, precision)
    accel.place(model.eval(), device)
    out = []
    for i in range(0, len(images), batch_size):
        with accel.autocast(device):
            out.append(model(accel.inputs(as_float(images[i : i + batch_size].to(device)))).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def renormalized(model: nn.Module, images: torch.Tensor, *, batch_size: int = 256, device: str | torch.device = "cpu",
                 precision: str = "auto") -> nn.Module | None:
    """A copy of `model` whose BatchNorm layers hold the statistics of `images` instead of those it
    trained on (AdaBN, Li et al. 2016): each running mean and variance is re-estimated from scratch,
    as the average over batches of at most `batch_size`, and every weight stays as it was. `images`
    as for `predict`. None when `model` has no BatchNorm layer.

    The batches are a fixed random draw of near-equal size: each batch counts as much as any other,
    so a last batch of a few images would have moved the statistics as much as a full one; and a
    batch's variance misses what differs between batches, so batches in the set's own order (a
    folder's images class by class) would have left most of the variance out."""
    adapted = copy.deepcopy(model)
    norms = [m for m in adapted.modules() if isinstance(m, BATCH_NORMS)]
    if not norms:
        return None
    device = torch.device(device)
    accel = Acceleration.for_classifier(device, precision)
    accel.place(adapted.eval(), device)  # dropout and the rest read as in predict; only the norms gather statistics
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches, not an exponential one
        norm.train()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    for batch in order.tensor_split(-(-len(images) // batch_size)):
        with accel.autocast(device):
            adapted(accel.inputs(as_float(images[batch].to(device))))
    return adapted.eval()
