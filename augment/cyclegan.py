"""CycleGAN training (Zhu et al. 2017) on in-memory image tensors, with the two extensions that
keep labels: CyCADA's semantic consistency, and a class-conditional variant (the `cgan` GAN).

Paper names: G maps source->target (`G_st`), F maps target->source (`G_ts`); D_Y judges target
images (`D_t`), D_X source images (`D_s`). Losses: adversarial (lsgan, vanilla or hinge), L1 cycle
(weight lambda_cycle), L1 identity (weight lambda_identity * lambda_cycle, as in the reference code).

Semantic consistency (CyCADA, Hoffman et al. 2018, eq. 4): a classifier C learns, alongside the
GAN, only from real labeled images (never from fakes; the generators' gradients never reach it).
Once it is competent (its running loss below `semantic_threshold`, CyCADA's 1.0), the generators
also pay `lambda_semantic` x [CE(C(G_st(x_s)), y_s) + CE(C(G_ts(x_t)), pseudo-label of x_t)]: a
translation must keep what C reads in the image. Unlike CyCADA, whose target term takes C's argmax
of every x_t, the pseudo-label is no plain argmax: a source-trained C often reads the target domain
near chance, and its guesses would teach G_ts to change classes. `pseudo_labels: confident` counts only target images that C reads with
confidence >= `pseudo_label_threshold`; `balanced` labels the whole target set every
`relabel_every` steps from C's readings averaged over neighbours and balanced to the source's class
proportions (augment/balanced_labels.py), and with `semantic_self_training` C learns from them, so
it becomes a reader of the target domain. `class_discriminator` makes both discriminators judge
each image as a member of its class (source label for a translation, pseudo-label for a target
image) without telling the generator the class.

Class-conditional (`conditional=True`, the `cgan` GAN): G_st(x_s, y) is told the class it
translates for (one-hot planes), and both discriminators are projection discriminators
(Miyato & Koyama 2018) that judge an image *as a member of its class*: a translated "7" that
looks like a target "1" is fake to D_t. Real target images carry their label when one of the few
labeled ones is visible, else C's pseudo-label once C is competent and confident
(`pseudo_label_threshold`), else "unknown" (-1: only the unconditional part of D judges them).
C then learns from the labeled source and the few labeled target images.

Data-parallel when a torch.distributed process group is up (e.g. under `torchrun`): every
process samples its own batch of `batch_size` (the global batch is world_size x batch_size),
gradients are averaged across processes before each optimiser step, so all replicas hold the
same weights, and only rank 0 calls `on_log` and `checkpoint`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from augment.acceleration import Acceleration
from augment.balanced_labels import balanced_pseudo_labels
from augment.data_parallel import average_gradients, average_statistics, lr_factor, rank_and_world, sync_initial_weights
from augment.image_pool import ImagePool
from augment.images import as_float, quantize
from augment.io import load_module, save_module
from models.classifiers import SmallCNN
from models.discriminators import PatchDiscriminator
from models.generators import build_conditional_generator, build_generator
from models.losses import cycle_loss, gan_loss, identity_loss
from models.warp import Warped, check_warp_name


@dataclass(frozen=True)
class CycleGANConfig:
    """One GAN training run's settings. Its defaults are a plain CycleGAN, for calling
    `train_cyclegan` from Python: no semantic loss, no warp, ResNet generators. The pipeline's
    defaults are params.yaml's `gan.cyclegan` and `gan.cgan` (`pipelines.config.as_config` builds
    this class from them)."""

    steps: int = 1500  # generator updates
    batch_size: int = 16
    generator: str = "resnet"  # "resnet" (Johnson et al.) or "unet" (pix2pix)
    ngf: int = 32  # generator width (reference: 64)
    n_blocks: int = 6  # resnet: residual blocks (reference: 9 at 256 px, 6 at 128 px)
    unet_downs: int = 4  # unet: stride-2 levels; the image side must be divisible by 2**unet_downs
    warp: str = "none"  # "affine": each generator re-frames its input with a learned affine warp first (models/warp.py)
    ndf: int = 32  # discriminator width (reference: 64)
    d_layers: int = 2  # PatchGAN depth: 2 -> 34x34 patches, fits 16-32 px images
    spectral_norm: bool = False  # spectral norm on every discriminator conv (Miyato et al. 2018)
    lr: float = 2e-4
    lr_batch: int = 16  # the global batch (batch_size x processes) `lr` is given for
    lr_scaling: str = "none"  # how the lr follows the global batch away from lr_batch: "sqrt", "linear" or "none" (scaled_lr)
    beta1: float = 0.5
    decay_from: float = 0.5  # fraction of steps after which the lr decays linearly to 0
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    lambda_semantic: float = 0.0  # CyCADA semantic-consistency weight; 0 = off
    semantic_threshold: float = 1.0  # C's running loss below which the semantic loss and pseudo-labels switch on
    semantic_lr: float = 1e-3  # Adam lr of the semantic classifier C (CyCADA: 1e-3)
    semantic_width: int = 32  # width of C (a SmallCNN)
    semantic_batch_size: int = 64  # real labeled images per C update (one update per GAN step)
    semantic_warmup: int = 0  # C-only updates before the GAN starts (many classes: C needs a head start)
    semantic_views: bool = True  # C learns from randomly shifted, scaled, re-lit, blurred and noisy views of its images
    semantic_judge_views: bool = False  # C judges each source->target translation through one such random view (expectation over transformation)
    semantic_self_training: bool = False  # once competent, C also learns from target images with their pseudo-labels (see pseudo_labels)
    conditional: bool = False  # class-conditional generator and projection discriminators (the cgan)
    class_discriminator: bool = False  # projection discriminators without a conditional generator: a translation is judged as a member of its source label's class
    pseudo_label_threshold: float = 0.9  # C's softmax confidence that makes a target pseudo-label ("confident")
    pseudo_labels: str = "confident"  # how unlabeled target images get labels: "confident" (C's sure readings) or "balanced" (augment/balanced_labels.py)
    relabel_every: int = 50  # "balanced": steps between two labellings of the target set (the first once C is competent)
    relabel_pool: int = 4096  # "balanced": target images labelled at a time, a fresh random draw each time when the set is larger (the others keep their latest label); the neighbour search costs pool^2
    balance_strength: float = math.inf  # "balanced": how firmly the class totals follow the source's proportions (inf: exactly)
    pool_size: int = 50
    loss: str = "lsgan"
    seed: int = 0
    log_every: int = 50

    @property
    def judges_classes(self) -> bool:
        """The discriminators are projection discriminators that see each image's class."""
        return self.conditional or self.class_discriminator

    @property
    def uses_classifier(self) -> bool:
        return self.lambda_semantic > 0 or self.judges_classes


@dataclass
class CycleGANModels:
    G_st: nn.Module
    G_ts: nn.Module
    D_s: nn.Module
    D_t: nn.Module
    C: nn.Module | None = None  # semantic classifier (real labeled images only); None when unused

    def named(self) -> dict[str, nn.Module]:
        nets = {"G_st": self.G_st, "G_ts": self.G_ts, "D_s": self.D_s, "D_t": self.D_t}
        if self.C is not None:
            nets["C"] = self.C
        return nets

    def state_dict(self) -> dict:
        return {name: net.state_dict() for name, net in self.named().items()}


@dataclass
class TrainState:
    """Everything needed to resume training exactly where a checkpoint left it."""

    step: int = 0
    history: list[dict] = field(default_factory=list)
    # With "balanced" pseudo-labels: the target train set's labels at the end (the visible ones, else
    # the latest balanced reading, -1 where none yet); the same in every process. None otherwise.
    target_labels: torch.Tensor | None = None


def generator_arch(cfg: CycleGANConfig, channels: int, num_classes: int = 0, *, conditional: bool = False) -> dict:
    """Constructor arguments of a generator (incl. "name"), as `save_module` stores them."""
    arch: dict = {"name": cfg.generator, "in_channels": channels, "out_channels": channels, "ngf": cfg.ngf}
    arch.update(n_blocks=cfg.n_blocks) if cfg.generator == "resnet" else arch.update(num_downs=cfg.unet_downs)
    if conditional:
        arch["num_classes"] = num_classes
    if cfg.warp != "none":
        arch["warp"] = cfg.warp
    return arch


def build_any_generator(name: str, *, num_classes: int = 0, warp: str = "none", **arch) -> nn.Module:
    """`build_generator`, or its class-conditional wrapper when `num_classes` is given; behind a
    learned affine warp when `warp` is "affine"."""
    check_warp_name(warp)
    net = build_conditional_generator(name, num_classes=num_classes, **arch) if num_classes else build_generator(name, **arch)
    return Warped(net, arch["in_channels"]) if warp == "affine" else net


def build_cyclegan(cfg: CycleGANConfig, channels: int, num_classes: int = 0) -> CycleGANModels:
    """G_st is class-conditional when cfg.conditional; G_ts never is (target labels are mostly unknown)."""
    if cfg.uses_classifier and num_classes < 2:
        raise ValueError(f"semantic consistency and the conditional GAN need labeled source images of at least 2 classes, got {num_classes}")
    d_classes = num_classes if cfg.judges_classes else 0

    def g(conditional: bool):
        return build_any_generator(**generator_arch(cfg, channels, num_classes, conditional=conditional))

    def d():
        return PatchDiscriminator(channels, ndf=cfg.ndf, n_layers=cfg.d_layers, spectral_norm=cfg.spectral_norm, num_classes=d_classes)

    torch.manual_seed(cfg.seed)
    nets = CycleGANModels(G_st=g(cfg.conditional), G_ts=g(False), D_s=d(), D_t=d())
    if cfg.uses_classifier:
        nets.C = SmallCNN(channels, num_classes, width=cfg.semantic_width)
    return nets


def _share_labelling(pseudo: torch.Tensor, moved: float, device: torch.device) -> float:
    """Every process takes rank 0's labelling (in place) and its moved share: each process draws its
    own pool, so labellings would differ."""
    buf = torch.cat([pseudo.to(device, torch.float64), torch.tensor([moved], dtype=torch.float64, device=device)])
    torch.distributed.broadcast(buf, src=0)  # on the device: NCCL takes no CPU tensors
    pseudo.copy_(buf[:-1].to(pseudo.device, pseudo.dtype))
    return float(buf[-1])


def on_device_if_it_fits(images: torch.Tensor, device: torch.device, *, share: float = 0.25) -> torch.Tensor:
    """Training images on the GPU once, as uint8 when they came from 8-bit files (4x smaller than
    float32), when they take at most `share` of its free memory; else left where they are (batches
    are then copied per step). On the CPU: unchanged."""
    if device.type != "cuda" or images.device == device:
        return images
    if images.dtype == torch.uint8:
        stored = images
    else:
        u8 = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        exact = torch.equal(as_float(u8), images.float())  # values from 8-bit images survive the round trip
        stored = u8 if exact else images
    free, _ = torch.cuda.mem_get_info(device)
    return stored.to(device) if stored.numel() * stored.element_size() <= share * free else images


def scaled_lr(cfg: CycleGANConfig, world: int = 1) -> float:
    """The generators' and discriminators' Adam learning rate for this run's global batch
    (`batch_size` images per process x `world` processes): `lr` is given for `lr_batch` images, and
    scaled by the square root of the batch ratio ("sqrt", the rule for Adam: Malladi et al. 2022),
    by the ratio itself ("linear", Goyal et al. 2017's rule for SGD), or not at all ("none")."""
    if cfg.lr_batch < 1:
        raise ValueError(f"lr_batch must be a positive number of images; got {cfg.lr_batch}")
    return cfg.lr * lr_factor(cfg.lr_scaling, cfg.batch_size * world / cfg.lr_batch)


def _lr_factor(step: int, cfg: CycleGANConfig) -> float:
    start = int(cfg.decay_from * cfg.steps)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1, cfg.steps - start))


class SemanticClassifier:
    """C of CyCADA: learns from real labeled images only, judges translations once competent.

    `parts` are (images, labels) sets of real labeled images C may learn from: the labeled source,
    plus the visible target labels for the conditional GAN. Each batch takes an equal share of
    every part, so a handful of target labels weigh as much as thousands of source ones (the
    classifier has to read both domains). Its running loss decides competence.
    """

    def __init__(self, net: nn.Module, parts: list[tuple[torch.Tensor, torch.Tensor]], cfg: CycleGANConfig, *,
                 device: torch.device | str = "cpu", accel: Acceleration = Acceleration(), forward: Callable | None = None):
        self.net, self.parts, self.cfg, self.accel = net, parts, cfg, accel
        self.unlabeled: torch.Tensor | None = None  # target images for self-training (set by the caller)
        self.unlabeled_labels: torch.Tensor | None = None  # their labels when balanced (-1: none yet), else None
        self.forward = forward if forward is not None else net
        self.opt = accel.adam(net.parameters(), lr=cfg.semantic_lr)
        # Kept on the device (a 0-dim tensor, inf until the first update): reading it every step would
        # stall a GPU on a host synchronisation.
        self.running = torch.full((), math.inf, device=device)

    @property
    def running_loss(self) -> float:
        return float(self.running)

    @running_loss.setter
    def running_loss(self, value: float) -> None:
        self.running.fill_(value)

    @property
    def competent(self) -> torch.Tensor:
        """0-dim bool tensor (on the device): the running loss is below the threshold."""
        return self.running < self.cfg.semantic_threshold

    def learn(self, rng: torch.Generator, device: torch.device, world: int) -> torch.Tensor:
        share = max(1, self.cfg.semantic_batch_size // len(self.parts))
        picks = [torch.randint(len(labels), (share,), generator=rng, device=rng.device) for _, labels in self.parts]
        x = torch.cat([as_float(images[i.to(images.device)].to(device)) for (images, _), i in zip(self.parts, picks)])
        y = torch.cat([labels[i.to(labels.device)] for (_, labels), i in zip(self.parts, picks)]).to(device)
        if self.unlabeled is not None:
            # Self-training: a share of target images with C's own confident reading as label (-1, and
            # so ignored by the loss, where C is unsure or not yet competent). C then also learns what
            # the target domain looks like, which makes it a better judge of G_st's translations.
            i = torch.randint(len(self.unlabeled), (share,), generator=rng, device=rng.device)
            xu = as_float(self.unlabeled[i.to(self.unlabeled.device)].to(device))
            if self.unlabeled_labels is not None:
                yu = self.unlabeled_labels[i.to(self.unlabeled_labels.device)].to(device)
            else:
                yu = self.pseudo_labels(self.accel.inputs(xu), torch.full((share,), -1, dtype=torch.long, device=device), self.cfg.pseudo_label_threshold)
            x, y = torch.cat([x, xu]), torch.cat([y, yu])
        if self.cfg.semantic_views:
            x = robust_views(x, rng)
        self.net.train()
        with self.accel.autocast(device):
            loss = F.cross_entropy(self.forward(self.accel.inputs(x)).float(), y, ignore_index=-1)
        self.opt.zero_grad()
        loss.backward()
        average_gradients([self.net], world)
        self.opt.step()
        average_statistics(self.net, world)
        self.net.eval()  # judged and pseudo-labelled with running BN statistics, deterministic dropout
        value = loss.detach().float()
        if world > 1:  # the mean over processes: competence, and so when labelling starts, is the same in all
            torch.distributed.all_reduce(value)
            value /= world
        self.running.copy_(torch.where(torch.isinf(self.running), value, 0.9 * self.running + 0.1 * value))
        return value

    @torch.no_grad()
    def pseudo_labels(self, images: torch.Tensor, known: torch.Tensor, threshold: float | None) -> torch.Tensor:
        """Known labels (>= 0) win; else C's argmax (if confident above `threshold`, when given) once
        C is competent; else -1 (unknown)."""
        with self.accel.autocast(images.device):
            prob = self.forward(images).float().softmax(1)
        conf, pred = prob.max(1)
        if threshold is not None:
            pred = torch.where(conf >= threshold, pred, torch.full_like(pred, -1))
        return torch.where((known >= 0) | ~self.competent, known, pred)

    @torch.no_grad()
    def balanced_labels(self, images: torch.Tensor, prior: torch.Tensor, device: torch.device, *,
                        batch: int = 512) -> tuple[torch.Tensor, float]:
        """(N,) labels of (N, C, H, W) unlabeled `images` from C's readings, balanced to `prior`
        (augment/balanced_labels.py), on `images`' device, and the share the balancing moved. C
        reads the images as they are, in eval mode."""
        self.net.eval()
        probs, feats = [], []
        for i in range(0, len(images), batch):
            x = self.accel.inputs(as_float(images[i : i + batch].to(device)))
            with self.accel.autocast(device):
                f = self.net.features(x)
                probs.append(self.net.head(f).float().softmax(1))
            feats.append(f.float())
        labels, moved = balanced_pseudo_labels(torch.cat(probs), torch.cat(feats), prior.to(device), strength=self.cfg.balance_strength)
        return labels.to(images.device), moved

    def consistency(self, fake_t: torch.Tensor, y_s: torch.Tensor, fake_s: torch.Tensor, y_t: torch.Tensor,
                    rng: torch.Generator | None = None) -> torch.Tensor:
        """CE of C on both translations against the labels they should keep (unknown target labels skipped).

        With `semantic_judge_views`, C reads each source->target translation through a random view
        (`robust_views`, drawn from `rng`), the kind of view C learned to read: a translation has to
        keep its class where it stands, not at its exact pixels, so patterns that fool C on one exact
        image stop paying (expectation over transformation, Athalye et al. 2018). The views are
        differentiable, so the generator still gets C's gradient.
        """
        if self.cfg.semantic_judge_views:
            if rng is None:
                raise ValueError("semantic_judge_views needs a random generator for the views")
            fake_t = robust_views(fake_t, rng)
        loss = F.cross_entropy(self.forward(fake_t).float(), y_s)
        # Mean over the target images with a label; 0 when none has one (no host synchronisation).
        per_image = F.cross_entropy(self.forward(fake_s).float(), y_t, ignore_index=-1, reduction="none")
        return loss + per_image.sum() / (y_t >= 0).sum().clamp_min(1)


def relabel(sem: SemanticClassifier, target: torch.Tensor, known: torch.Tensor, pseudo: torch.Tensor, prior: torch.Tensor, *,
            pool: int, rng: torch.Generator, device: torch.device) -> float:
    """One "balanced" labelling: C's balanced readings written into `pseudo` (visible labels in
    `known` win). A target set larger than `pool` is labelled `pool` random images at a time (a
    fresh draw from `rng` each call; the others keep their latest label, -1 before their first):
    a uniform draw keeps the class proportions the balancing relies on, and the cost per labelling
    stays bounded however large the set. Returns the share of the labelled images the balancing moved."""
    # The whole set when it fits: no draw, so rng's stream (and the run) is as without a pool.
    pick = slice(None) if len(target) <= pool else torch.randperm(len(target), generator=rng, device=rng.device)[:pool].to(target.device)
    labels, moved = sem.balanced_labels(target[pick], prior, device)
    pseudo[pick] = torch.where(known[pick] >= 0, known[pick], labels.to(pseudo.device))
    return moved


def _same_label_rate(real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide labels (-1) at random in whichever of the two (B,) label batches has more of them, until
    both have the same fraction labeled."""
    r_real, r_fake = (real >= 0).float().mean(), (fake >= 0).float().mean()  # on the device: no host sync

    def hide(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        drop = torch.rand(len(y), generator=rng, device=rng.device).to(y.device) < p
        return torch.where(drop, torch.full_like(y, -1), y)

    # Only the side with the higher rate loses labels (the other's hiding probability is 0).
    p_real = torch.where(r_real > r_fake, 1 - r_fake / r_real.clamp_min(1e-12), torch.zeros_like(r_real))
    p_fake = torch.where(r_fake > r_real, 1 - r_real / r_fake.clamp_min(1e-12), torch.zeros_like(r_fake))
    return hide(real, p_real), hide(fake, p_fake)


def _same_generator_kind(rng: torch.Generator, state: torch.Tensor) -> bool:
    """A saved generator state fits `rng` only when it came from the same kind of device (a CPU
    checkpoint resumed on a GPU continues from a fresh stream instead)."""
    return state.numel() == rng.get_state().numel()


def robust_views(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random class-preserving views of (B, C, H, W) images in [-1, 1], for training C.

    Scale 0.8-1.25, shift up to 12%, rotation up to 10 degrees, contrast 0.6-1.4, brightness
    +-0.3, a 3x3 blur on half the images and Gaussian noise up to 0.1. A C that must read the
    class through all of these reads shape rather than texture or intensity: it is a better judge
    of translated images, and a generator cannot satisfy it with high-frequency patterns.
    """
    b = len(x)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return (torch.rand(b, *shape, generator=rng, device=rng.device) * (hi - lo) + lo).to(x.device)

    scale, angle = u(0.8, 1.25), u(-0.1745, 0.1745)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, u(-0.12, 0.12)], 1), torch.stack([sin, cos, u(-0.12, 0.12)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Padding with the image's darkest value keeps the background of dark-on-light and light-on-dark alike.
    floor = x.amin(dim=(1, 2, 3), keepdim=True)
    out = F.grid_sample(x - floor, grid, padding_mode="zeros", align_corners=False) + floor
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * u(0.6, 1.4, 1, 1, 1) + mean + u(-0.3, 0.3, 1, 1, 1)
    blurred = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    out = torch.where(u(0, 1, 1, 1, 1) < 0.5, blurred, out)
    out = out + torch.randn(out.shape, generator=rng, device=rng.device).to(x.device) * u(0, 0.1, 1, 1, 1)
    return out.clamp(-1, 1)


def _real_and_fake_loss(adv: Callable, judge: Callable, d: nn.Module, real: tuple, fake: tuple) -> torch.Tensor:
    """A discriminator's loss on real and (pooled) fake images, judged in one pass: its instance norms
    work per image, so the pass gives what two would, at the cost of one."""
    (x_real, y_real), (x_fake, y_fake) = real, fake
    labels = torch.cat([y_real, y_fake]) if y_real is not None else None
    on_real, on_fake = judge(d, torch.cat([x_real, x_fake]), labels).split([len(x_real), len(x_fake)])
    return adv(on_real, True) + adv(on_fake, False)


def _restore(resume: dict, nets: CycleGANModels, optimizers: dict, pools: dict, device: torch.device) -> TrainState:
    """Load a checkpoint (read onto the CPU) into models, optimisers and pools living on `device`."""
    for name, net in nets.named().items():
        net.load_state_dict(resume["models"][name])  # copies into the parameters' device
    for name, opt in optimizers.items():
        opt.load_state_dict(resume[name])  # torch casts the state to each parameter's device
    for name, pool in pools.items():
        pool.load_state(resume[name], device)
    return TrainState(step=resume["step"], history=list(resume["history"]))


def train_cyclegan(
    source: torch.Tensor,
    target: torch.Tensor,
    cfg: CycleGANConfig,
    *,
    source_labels: torch.Tensor | None = None,
    target_labels: torch.Tensor | None = None,
    num_classes: int = 0,
    device: str | torch.device = "cpu",
    on_log: Callable[[int, dict], None] | None = None,
    checkpoint: Callable[[int, dict], None] | None = None,
    checkpoint_every: int = 0,
    resume: dict | None = None,
    accel: Acceleration | None = None,
) -> tuple[CycleGANModels, TrainState]:
    """Train on unpaired (N, C, H, W) source and (M, C, H, W) target images in [-1, 1], or uint8
    0..255 (a quarter of the memory; each batch is converted as it is drawn, to the same values).

    `source_labels` (N,) and `num_classes` are needed for the semantic loss and the conditional
    GAN; `target_labels` (M,) holds the visible target labels, -1 where none is visible.
    `on_log(step, losses)` is called every `cfg.log_every` steps; `checkpoint(step, state)` every
    `checkpoint_every` steps with a dict that `resume=` accepts to continue the same run.
    `accel` (default: `Acceleration.choose(device)`) sets precision, layout and compilation.
    """
    if source.ndim != 4 or target.ndim != 4 or source.shape[1:] != target.shape[1:]:
        raise ValueError(f"source and target must be (N, C, H, W) of the same C, H, W; got {tuple(source.shape)} and {tuple(target.shape)}")
    if cfg.uses_classifier and (source_labels is None or len(source_labels) != len(source)):
        raise ValueError("lambda_semantic > 0 and the conditional GAN need one source label per source image")
    if target_labels is None:
        target_labels = torch.full((len(target),), -1, dtype=torch.long)
    device = torch.device(device)
    accel = accel or Acceleration.choose(device)
    nets = build_cyclegan(cfg, source.shape[1], num_classes)
    rank, world = rank_and_world()
    run = {name: accel.place(net, device) for name, net in nets.named().items()}  # what the loop calls
    source, target = on_device_if_it_fits(source, device), on_device_if_it_fits(target, device)
    if source_labels is not None:
        source_labels = source_labels.to(source.device)
    target_labels = target_labels.to(target.device)
    lr = scaled_lr(cfg, world)
    opt_g = accel.adam([*nets.G_st.parameters(), *nets.G_ts.parameters()], lr=lr, betas=(cfg.beta1, 0.999))
    opt_d = accel.adam([*nets.D_s.parameters(), *nets.D_t.parameters()], lr=lr, betas=(cfg.beta1, 0.999))
    optimizers = {"opt_g": opt_g, "opt_d": opt_d}
    sem = None
    balanced = nets.C is not None and cfg.pseudo_labels == "balanced"
    if nets.C is not None:
        # The conditional GAN's C also learns from the visible target labels; CyCADA's from source alone.
        known = target_labels >= 0
        parts = [(source, source_labels)]
        if cfg.conditional and known.any():
            parts.append((target[known], target_labels[known]))
        sem = SemanticClassifier(nets.C, parts, cfg, device=device, accel=accel, forward=run["C"])
        if cfg.semantic_self_training:
            sem.unlabeled = target[~known] if known.any() and not balanced else target
        optimizers["opt_c"] = sem.opt
    # "balanced": every target image's label (a visible one, else C's balanced reading; -1 until the
    # first labelling), renewed every relabel_every steps once C is competent.
    pseudo, labelled_at, moved = target_labels.clone(), None, math.nan
    if balanced:
        prior = torch.bincount(source_labels, minlength=num_classes).float()
        if cfg.semantic_self_training:
            sem.unlabeled_labels = pseudo
    adv = gan_loss(cfg.loss)
    pools = {"pool_s": ImagePool(size=cfg.pool_size, seed=cfg.seed + 1), "pool_t": ImagePool(size=cfg.pool_size, seed=cfg.seed + 2)}
    pool_s, pool_t = pools["pool_s"], pools["pool_t"]
    if world > 1:
        sync_initial_weights(list(nets.named().values()))
    # Each process its own batches. The generator lives on the training device: random numbers made
    # on the CPU would each cost a host-to-device copy, which synchronises with a GPU every step.
    rng = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003 * rank)
    state = TrainState()
    if resume is not None:
        state = _restore(resume, nets, optimizers, pools, device)
        if sem is not None:
            sem.running_loss = resume["c_running_loss"]
            torch.set_rng_state(resume["torch_rng"])  # C's dropout draws from torch's global generator
            if device.type == "cuda" and "cuda_rng" in resume:
                torch.cuda.set_rng_state(resume["cuda_rng"], device)
        if resume.get("target_pseudo_step") is not None:
            pseudo.copy_(resume["target_pseudo"].to(pseudo.device))
            labelled_at, moved = resume["target_pseudo_step"], resume["target_pseudo_moved"]
        if rank == 0 and _same_generator_kind(rng, resume["rng"]):
            rng.set_state(resume["rng"])
        else:  # other ranks (checkpoints hold rank 0's sampler) or another device kind: a fresh, distinct stream
            rng.manual_seed(cfg.seed + 1_000_003 * rank + resume["step"])

    cond, cond_d = cfg.conditional, cfg.judges_classes
    G_st, G_ts, D_s, D_t = run["G_st"], run["G_ts"], run["D_s"], run["D_t"]
    def g_st(x, y):  # noqa: E306 - G_st takes the class only in the conditional GAN
        return G_st(x, y) if cond else G_st(x)

    def judge(d: Callable, x, y):
        return d(x, y) if cond_d else d(x)

    def batch(images: torch.Tensor, labels: torch.Tensor | None, idx: torch.Tensor):
        idx = idx.to(images.device, non_blocking=True)
        x = accel.inputs(as_float(images[idx].to(device, non_blocking=True)))  # uint8 crosses to the device, then float
        return x, (labels[idx].to(device, non_blocking=True) if labels is not None else None)

    if sem is not None and state.step == 0:
        for _ in range(cfg.semantic_warmup):
            sem.learn(rng, device, world)

    lam_c, lam_i = cfg.lambda_cycle, cfg.lambda_identity * cfg.lambda_cycle
    zero = torch.zeros((), device=device)
    t0 = time.perf_counter()
    while state.step < cfg.steps:
        factor = _lr_factor(state.step, cfg)
        opt_g.lr = opt_d.lr = lr * factor
        i_s = torch.randint(len(source), (cfg.batch_size,), generator=rng, device=rng.device)
        i_t = torch.randint(len(target), (cfg.batch_size,), generator=rng, device=rng.device)
        real_s, y_s = batch(source, source_labels, i_s)  # (B, C, H, W), (B,)
        real_t, y_t = batch(target, target_labels, i_t)  # y_t: -1 = unknown

        loss_c = zero
        if sem is not None:
            loss_c = sem.learn(rng, device, world)
            # A host synchronisation every step until the first labelling, then every relabel_every steps.
            if balanced and (labelled_at is None or state.step - labelled_at >= cfg.relabel_every) and bool(sem.competent):
                moved = relabel(sem, target, target_labels, pseudo, prior, pool=cfg.relabel_pool, rng=rng, device=device)
                if world > 1:
                    moved = _share_labelling(pseudo, moved, device)
                labelled_at = state.step
            # Target labels: C's balanced readings of the whole set, or only its confident readings (CyCADA
            # takes every argmax: where C reads the target domain poorly, its unsure guesses would teach
            # G_ts to change classes).
            if balanced:
                y_t = pseudo[i_t.to(pseudo.device)].to(device)
            else:
                y_t = sem.pseudo_labels(real_t, y_t, cfg.pseudo_label_threshold)

        # Generators: fool both discriminators, reconstruct through the cycle, keep identity and labels.
        for net in (nets.D_s, nets.D_t, *( [nets.C] if nets.C is not None else [])):
            net.requires_grad_(False)
        # What each discriminator is told: real and fake images labeled at the same rate, so that
        # "has a label" is never a cue for "real" or "fake" (with no target labels, D_t is unconditional).
        dt_real, dt_fake = _same_label_rate(y_t, y_s, rng) if cond_d else (None, None)
        ds_real, ds_fake = _same_label_rate(y_s, y_t, rng) if cond_d else (None, None)
        with accel.autocast(device):
            if lam_i > 0:  # each generator translates and maps its own domain in one pass (instance norm: per image)
                fake_t, idt_t = g_st(torch.cat([real_s, real_t]), torch.cat([y_s, y_t]) if cond else None).split(len(real_s))
                fake_s, idt_s = G_ts(torch.cat([real_t, real_s])).split(len(real_t))
                loss_idt = identity_loss(idt_t, real_t) + identity_loss(idt_s, real_s)
            else:
                fake_t, fake_s, loss_idt = g_st(real_s, y_s), G_ts(real_t), zero
            loss_adv = adv(judge(D_t, fake_t, dt_fake), True, for_generator=True) + adv(judge(D_s, fake_s, ds_fake), True, for_generator=True)
            loss_cyc = cycle_loss(G_ts(fake_t), real_s) + cycle_loss(g_st(fake_s, y_t), real_t)
            # Computed always and weighted 0 until C is competent: a Python `if` on C's state would
            # cost a host synchronisation every step.
            semantic_on = sem.competent if cfg.lambda_semantic > 0 else torch.zeros((), dtype=torch.bool, device=device)
            loss_sem = sem.consistency(fake_t, y_s, fake_s, y_t, rng) * semantic_on if cfg.lambda_semantic > 0 else zero
        loss_g = loss_adv + lam_c * loss_cyc + lam_i * loss_idt + cfg.lambda_semantic * loss_sem
        opt_g.zero_grad()
        loss_g.backward()
        average_gradients([nets.G_st, nets.G_ts], world)
        opt_g.step()
        if nets.C is not None:
            nets.C.requires_grad_(True)

        # Discriminators: real vs. pooled fakes, halved so D learns slower than G (CycleGAN sec. 4).
        nets.D_s.requires_grad_(True)
        nets.D_t.requires_grad_(True)
        if cond_d:
            pooled_t, pooled_yt = pool_t.query(fake_t, dt_fake)
            pooled_s, pooled_ys = pool_s.query(fake_s, ds_fake)
        else:
            (pooled_t, pooled_yt), (pooled_s, pooled_ys) = (pool_t.query(fake_t), None), (pool_s.query(fake_s), None)
        # the pool hands back its own layout (NCHW once it holds images): the discriminators' layout
        pooled_t, pooled_s = accel.inputs(pooled_t), accel.inputs(pooled_s)
        with accel.autocast(device):
            loss_d_t = 0.5 * _real_and_fake_loss(adv, judge, D_t, (real_t, dt_real), (pooled_t, pooled_yt))
            loss_d_s = 0.5 * _real_and_fake_loss(adv, judge, D_s, (real_s, ds_real), (pooled_s, pooled_ys))
        opt_d.zero_grad()
        (loss_d_t + loss_d_s).backward()
        average_gradients([nets.D_s, nets.D_t], world)
        opt_d.step()

        state.step += 1
        if state.step % cfg.log_every == 0 or state.step == cfg.steps:
            losses = {
                "loss_g_adv": loss_adv.item(), "loss_cycle": loss_cyc.item(), "loss_identity": loss_idt.item(),
                "loss_d_t": loss_d_t.item(), "loss_d_s": loss_d_s.item(), "lr": lr * factor,
                "seconds": time.perf_counter() - t0,
            }
            if sem is not None:
                losses.update(loss_c=float(loss_c), loss_c_running=sem.running_loss, loss_semantic=float(loss_sem.detach()), semantic_on=float(semantic_on),
                              target_labeled=float((y_t >= 0).float().mean()))
                if balanced and not math.isnan(moved):  # from the first labelling on (of this process)
                    losses["pseudo_moved"] = moved
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"CycleGAN losses became non-finite at step {state.step}: {losses}; the training "
                                         f"diverged: a lower lr, or lower loss weights, usually helps")
            state.history.append({"step": state.step, **losses})
            if on_log is not None and rank == 0:
                on_log(state.step, losses)
        if rank == 0 and checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0 and state.step < cfg.steps:
            checkpoint(state.step, copy.deepcopy({  # a snapshot: training goes on mutating these objects
                "step": state.step, "history": state.history, "models": nets.state_dict(),
                **{name: opt.state_dict() for name, opt in optimizers.items()}, "rng": rng.get_state(),
                **{name: pool.state() for name, pool in pools.items()},
                "c_running_loss": sem.running_loss if sem is not None else math.inf, "target_pseudo": pseudo,
                "target_pseudo_step": labelled_at, "target_pseudo_moved": moved,
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                "config": dataclasses.asdict(cfg),
            }))
    for net in nets.named().values():
        net.eval()
    if balanced:
        state.target_labels = pseudo.cpu()
    return nets, state


@torch.inference_mode()
def translate(
    generator: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None, *,
    batch_size: int = 256, device: str | torch.device = "cpu", precision: str = "auto", uint8: bool = False,
) -> torch.Tensor:
    """Apply a generator to (N, C, H, W) images in [-1, 1] (or uint8), in batches; returns CPU tensors:
    float in [-1, 1], or with `uint8` each batch quantized as it would be saved (a quarter of the
    memory of a float result for the whole set).

    A class-conditional generator needs the (N,) labels the images are made for. `precision` is
    `runtime.precision` (auto | bf16 | fp32), as in training.
    """
    device = torch.device(device)
    accel = Acceleration.choose(device, precision=precision, compile=False)  # one pass is not worth compiling
    generator.eval()
    accel.place(generator, device)
    out = []
    for i in range(0, len(images), batch_size):
        x = accel.inputs(as_float(images[i : i + batch_size].to(device)))
        with accel.autocast(device):
            y = generator(x) if labels is None else generator(x, labels[i : i + batch_size].to(device))
        y = y.float().contiguous()
        out.append((quantize(y) if uint8 else y).cpu())
    empty = torch.zeros((0, *images.shape[1:]), dtype=torch.uint8 if uint8 else torch.float32)
    return torch.cat(out) if out else empty


def is_conditional(generator: nn.Module) -> bool:
    return getattr(generator, "num_classes", 0) > 0


def save_generator(generator: nn.Module, cfg: CycleGANConfig, channels: int, path, *, num_classes: int = 0) -> None:
    """Weights plus constructor arguments, so the file rebuilds without params.yaml."""
    save_module(generator, generator_arch(cfg, channels, num_classes, conditional=is_conditional(generator)), path)


def load_generator(path, *, device: str | torch.device = "cpu") -> nn.Module:
    return load_module(path, build_any_generator, device=device)
