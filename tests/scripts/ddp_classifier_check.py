"""Run under torchrun: a tiny classifier trained data-parallel with gloo; rank 0 writes what the test checks.

Each rank draws its own batches (its own seed), so equal weights and batch-norm statistics at the
end can only come from averaged gradients and averaged statistics.
"""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from augment.classify import ClassifierConfig, train_classifier  # noqa: E402
from augment.mixing import LabeledImages, MixedBatches  # noqa: E402

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
g = torch.Generator().manual_seed(0)
images = LabeledImages(torch.rand(64, 1, 8, 8, generator=g) * 2 - 1, torch.randint(0, 3, (64,), generator=g))
batches = MixedBatches(parts={"source": (images, 1.0)}, batch_size=8, seed=1_000_003 * rank)
first_labels = batches.next()[1].tolist()
logged = []
model = train_classifier(batches, ClassifierConfig(width=4, steps=6, batch_size=8, log_every=3), in_channels=1, num_classes=3, seed=0,
                         on_log=lambda step, m: logged.append([step, m["loss"]]))


def gathered(t: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.zeros_like(t) for _ in range(world)]
    dist.all_gather(out, t)
    return out


weights = gathered(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
stats = gathered(torch.cat([b.reshape(-1).float() for b in model.buffers() if b.is_floating_point()]))
labels, logs = [None] * world, [None] * world
dist.all_gather_object(labels, first_labels)
dist.all_gather_object(logs, logged)
if rank == 0:
    Path(sys.argv[1]).write_text(json.dumps({
        "world": world,
        "first_batch_labels": labels,
        "max_weight_diff": max(float((t - weights[0]).abs().max()) for t in weights),
        "max_statistics_diff": max(float((t - stats[0]).abs().max()) for t in stats),
        "statistics": stats[0].numel(),
        "logged": logs,
    }))
dist.destroy_process_group()
