"""Run under torchrun: tiny CycleGAN training with gloo; rank 0 writes what the test checks.

Each rank trains on different data (its own seeded sampler), so equal weights at the end can
only come from averaged gradients. A second argument `channels_last` trains with NHWC weights and
inputs, the layout of the GPU path, through the same broadcast and gradient averaging.
"""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from augment.acceleration import Acceleration  # noqa: E402
from augment.cyclegan import CycleGANConfig, train_cyclegan  # noqa: E402

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
g = torch.Generator().manual_seed(0)
source = torch.rand(64, 1, 8, 8, generator=g) * 2 - 1
target = torch.rand(64, 1, 8, 8, generator=g) * 2 - 1
cfg = CycleGANConfig(steps=6, batch_size=4, ngf=4, n_blocks=1, ndf=4, d_layers=1, pool_size=4, log_every=3)
logged = []
channels_last = sys.argv[2:] == ["channels_last"]
accel = Acceleration(channels_last=channels_last, fused_optimizer=True)
nets, state = train_cyclegan(source, target, cfg, on_log=lambda step, losses: logged.append(step), accel=accel)
flat = torch.cat([p.detach().reshape(-1) for net in (nets.G_st, nets.G_ts, nets.D_s, nets.D_t) for p in net.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(world)]
dist.all_gather(gathered, flat)
losses = torch.tensor([state.history[-1]["loss_cycle"]])
all_losses = [torch.zeros_like(losses) for _ in range(world)]
dist.all_gather(all_losses, losses)
logs = [None] * world
dist.all_gather_object(logs, logged)
if rank == 0:
    Path(sys.argv[1]).write_text(json.dumps({
        "world": world,
        "max_weight_diff": max(float((t - gathered[0]).abs().max()) for t in gathered),
        "cycle_losses": [float(l) for l in all_losses],
        "logged_steps": logs,
        "channels_last_weights": all(p.is_contiguous(memory_format=torch.channels_last) for p in nets.G_st.parameters() if p.ndim == 4),
    }))
dist.destroy_process_group()
