"""Run under torchrun: tiny CycleGAN with balanced target pseudo-labels, gloo; rank 0 writes what the test checks.

The target set (48 images) is larger than the labelling pool (16), so each process, drawing its own
pool with its own sampler, would label other images: equal labels at the end can only come from
the processes sharing one labelling.
"""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from augment.cyclegan import CycleGANConfig, train_cyclegan  # noqa: E402

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
g = torch.Generator().manual_seed(0)
labels = torch.arange(48) % 2
source = (torch.rand(48, 1, 8, 8, generator=g) * 0.5 + labels.view(-1, 1, 1, 1) * 0.5) * 2 - 1  # the class: brightness
target = (torch.rand(48, 1, 8, 8, generator=g) * 0.5 + labels.view(-1, 1, 1, 1) * 0.5) * 2 - 1
cfg = CycleGANConfig(steps=6, batch_size=4, ngf=4, n_blocks=1, ndf=4, d_layers=1, pool_size=4, log_every=3, semantic_width=4,
                     semantic_batch_size=8, lambda_semantic=1.0, semantic_threshold=1e9, pseudo_labels="balanced",
                     relabel_every=2, relabel_pool=16)
nets, state = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2)
mine = {"labels": state.target_labels.tolist(), "c_running": [h["loss_c_running"] for h in state.history],
        "moved": [h.get("pseudo_moved") for h in state.history],
        # C's batch-norm statistics (each process normalised its own batches) and its weights
        "c_buffers": [b.tolist() for b in nets.C.buffers() if b.is_floating_point()],
        "c_weights": [p.detach().reshape(-1).tolist() for p in nets.C.parameters()]}
every = [None] * world
dist.all_gather_object(every, mine)
if rank == 0:
    Path(sys.argv[1]).write_text(json.dumps({"world": world, "ranks": every}))
dist.destroy_process_group()
