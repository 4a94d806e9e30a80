"""CycleGAN training (Zhu et al. 2017) on in-memory image tensors.

Data-parallel when a torch.distributed process group is up (e.g. under `torchrun`): every
process samples its own batch of `batch_size` (the global batch is world_size x batch_size),
gradients are averaged across processes before each optimiser step, so all replicas hold the
same weights, and only rank 0 calls `on_log` and `checkpoint`.

Paper names: G maps source->target (`G_st`), F maps target->source (`G_ts`); D_Y judges target
images (`D_t`), D_X source images (`D_s`). Losses: LSGAN adversarial, L1 cycle (weight
lambda_cycle), L1 identity (weight lambda_identity * lambda_cycle, as in the reference code).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from augment.image_pool import ImagePool
from augment.io import load_module, save_module
from models.discriminators import PatchDiscriminator
from models.generators import build_generator
from models.losses import cycle_loss, gan_loss, identity_loss


@dataclass(frozen=True)
class CycleGANConfig:
    steps: int = 1500  # generator updates
    batch_size: int = 16
    generator: str = "resnet"
    ngf: int = 32  # generator width (reference: 64)
    n_blocks: int = 6  # residual blocks (reference: 9 at 256 px, 6 at 128 px)
    ndf: int = 32  # discriminator width (reference: 64)
    d_layers: int = 2  # PatchGAN depth: 2 -> 34x34 patches, fits 16-32 px images
    lr: float = 2e-4
    beta1: float = 0.5
    decay_from: float = 0.5  # fraction of steps after which the lr decays linearly to 0
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    loss: str = "lsgan"
    seed: int = 0
    log_every: int = 50


@dataclass
class CycleGANModels:
    G_st: nn.Module
    G_ts: nn.Module
    D_s: nn.Module
    D_t: nn.Module

    def state_dict(self) -> dict:
        return {name: getattr(self, name).state_dict() for name in ("G_st", "G_ts", "D_s", "D_t")}


@dataclass
class TrainState:
    """Everything needed to resume training exactly where a checkpoint left it."""

    step: int = 0
    history: list[dict] = field(default_factory=list)


def build_cyclegan(cfg: CycleGANConfig, channels: int) -> CycleGANModels:
    def g():
        return build_generator(cfg.generator, in_channels=channels, out_channels=channels, ngf=cfg.ngf, n_blocks=cfg.n_blocks)

    def d():
        return PatchDiscriminator(channels, ndf=cfg.ndf, n_layers=cfg.d_layers)

    torch.manual_seed(cfg.seed)
    return CycleGANModels(G_st=g(), G_ts=g(), D_s=d(), D_t=d())


def _world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _sync_initial_weights(nets: list[nn.Module]) -> None:
    for net in nets:
        for p in net.parameters():
            torch.distributed.broadcast(p.data, src=0)


def _average_gradients(nets: list[nn.Module], world: int) -> None:
    """All-reduce the gradients of `nets` into their mean over processes (one flat buffer per call)."""
    grads = [p.grad for net in nets for p in net.parameters() if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _lr_factor(step: int, cfg: CycleGANConfig) -> float:
    start = int(cfg.decay_from * cfg.steps)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1, cfg.steps - start))


def train_cyclegan(
    source: torch.Tensor,
    target: torch.Tensor,
    cfg: CycleGANConfig,
    *,
    device: str | torch.device = "cpu",
    on_log: Callable[[int, dict], None] | None = None,
    checkpoint: Callable[[int, dict], None] | None = None,
    checkpoint_every: int = 0,
    resume: dict | None = None,
) -> tuple[CycleGANModels, TrainState]:
    """Train on unpaired (N, C, H, W) source and (M, C, H, W) target images in [-1, 1].

    `on_log(step, losses)` is called every `cfg.log_every` steps; `checkpoint(step, state)` every
    `checkpoint_every` steps with a dict that `resume=` accepts to continue the same run.
    """
    if source.ndim != 4 or target.ndim != 4 or source.shape[1:] != target.shape[1:]:
        raise ValueError(f"source and target must be (N, C, H, W) of the same C, H, W; got {tuple(source.shape)} and {tuple(target.shape)}")
    device = torch.device(device)
    channels = source.shape[1]
    nets = build_cyclegan(cfg, channels)
    rank, world = _world()
    for net in (nets.G_st, nets.G_ts, nets.D_s, nets.D_t):
        net.to(device)
    opt_g = torch.optim.Adam([*nets.G_st.parameters(), *nets.G_ts.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam([*nets.D_s.parameters(), *nets.D_t.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999))
    adv = gan_loss(cfg.loss)
    pool_s, pool_t = ImagePool(size=cfg.pool_size, seed=cfg.seed + 1), ImagePool(size=cfg.pool_size, seed=cfg.seed + 2)
    if world > 1:
        _sync_initial_weights([nets.G_st, nets.G_ts, nets.D_s, nets.D_t])
    rng = torch.Generator().manual_seed(cfg.seed + 1_000_003 * rank)  # each process its own batches
    state = TrainState()
    if resume is not None:
        for name, sd in resume["models"].items():
            getattr(nets, name).load_state_dict(sd)
        opt_g.load_state_dict(resume["opt_g"])
        opt_d.load_state_dict(resume["opt_d"])
        if rank == 0:
            rng.set_state(resume["rng"])
        else:  # checkpoints hold rank 0's sampler; the others continue from a fresh, distinct stream
            rng.manual_seed(cfg.seed + 1_000_003 * rank + resume["step"])
        pool_s.images, pool_t.images = list(resume["pool_s"]), list(resume["pool_t"])
        pool_s._rng.set_state(resume["pool_s_rng"])
        pool_t._rng.set_state(resume["pool_t_rng"])
        state = TrainState(step=resume["step"], history=list(resume["history"]))

    lam_c, lam_i = cfg.lambda_cycle, cfg.lambda_identity * cfg.lambda_cycle
    t0 = time.perf_counter()
    while state.step < cfg.steps:
        factor = _lr_factor(state.step, cfg)
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * factor
        real_s = source[torch.randint(len(source), (cfg.batch_size,), generator=rng)].to(device)  # (B, C, H, W)
        real_t = target[torch.randint(len(target), (cfg.batch_size,), generator=rng)].to(device)

        # Generators: fool both discriminators, reconstruct through the cycle, keep identity.
        nets.D_s.requires_grad_(False)
        nets.D_t.requires_grad_(False)
        fake_t = nets.G_st(real_s)
        fake_s = nets.G_ts(real_t)
        loss_adv = adv(nets.D_t(fake_t), True) + adv(nets.D_s(fake_s), True)
        loss_cyc = cycle_loss(nets.G_ts(fake_t), real_s) + cycle_loss(nets.G_st(fake_s), real_t)
        loss_idt = (
            identity_loss(nets.G_st(real_t), real_t) + identity_loss(nets.G_ts(real_s), real_s)
            if lam_i > 0 else torch.zeros((), device=device)
        )
        loss_g = loss_adv + lam_c * loss_cyc + lam_i * loss_idt
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        _average_gradients([nets.G_st, nets.G_ts], world)
        opt_g.step()

        # Discriminators: real vs. pooled fakes, halved so D learns slower than G (CycleGAN sec. 4).
        nets.D_s.requires_grad_(True)
        nets.D_t.requires_grad_(True)
        pooled_t, pooled_s = pool_t.query(fake_t), pool_s.query(fake_s)
        loss_d_t = 0.5 * (adv(nets.D_t(real_t), True) + adv(nets.D_t(pooled_t), False))
        loss_d_s = 0.5 * (adv(nets.D_s(real_s), True) + adv(nets.D_s(pooled_s), False))
        opt_d.zero_grad(set_to_none=True)
        (loss_d_t + loss_d_s).backward()
        _average_gradients([nets.D_s, nets.D_t], world)
        opt_d.step()

        state.step += 1
        if state.step % cfg.log_every == 0 or state.step == cfg.steps:
            losses = {
                "loss_g_adv": loss_adv.item(), "loss_cycle": loss_cyc.item(), "loss_identity": loss_idt.item(),
                "loss_d_t": loss_d_t.item(), "loss_d_s": loss_d_s.item(), "lr": cfg.lr * factor,
                "seconds": time.perf_counter() - t0,
            }
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"CycleGAN losses became non-finite at step {state.step}: {losses}")
            state.history.append({"step": state.step, **losses})
            if on_log is not None and rank == 0:
                on_log(state.step, losses)
        if rank == 0 and checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0 and state.step < cfg.steps:
            checkpoint(state.step, copy.deepcopy({  # a snapshot: training goes on mutating these objects
                "step": state.step, "history": state.history, "models": nets.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": rng.get_state(),
                "pool_s": pool_s.images, "pool_t": pool_t.images,
                "pool_s_rng": pool_s._rng.get_state(), "pool_t_rng": pool_t._rng.get_state(),
                "config": dataclasses.asdict(cfg),
            }))
    for net in (nets.G_st, nets.G_ts, nets.D_s, nets.D_t):
        net.eval()
    return nets, state


@torch.no_grad()
def translate(generator: nn.Module, images: torch.Tensor, *, batch_size: int = 256, device: str | torch.device = "cpu") -> torch.Tensor:
    """Apply a generator to (N, C, H, W) images in [-1, 1], in batches; returns CPU tensors."""
    generator.eval().to(device)
    out = [generator(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else images.new_zeros((0, *images.shape[1:]))


def save_generator(generator: nn.Module, cfg: CycleGANConfig, channels: int, path) -> None:
    """Weights plus constructor arguments, so the file rebuilds without params.yaml."""
    arch = {"name": cfg.generator, "in_channels": channels, "out_channels": channels, "ngf": cfg.ngf, "n_blocks": cfg.n_blocks}
    save_module(generator, arch, path)


def load_generator(path, *, device: str | torch.device = "cpu") -> nn.Module:
    return load_module(path, build_generator, device=device)
