"""What one "balanced" labelling of the target train set costs: the whole set against a bounded pool.

With `pseudo_labels: balanced` the GAN's semantic classifier C reads the target images every
`relabel_every` steps: a forward pass over each image read (linear in their number), then a
nearest-neighbour search among them in C's feature space (quadratic) and the Sinkhorn balancing.
`relabel_pool` bounds how many are read at a time. This times one labelling with the project's own
code (`augment.cyclegan.relabel`, C as params.yaml builds it) for target sets of each `--sizes`,
once with the pool as large as the set and once with `--pool`:

    python benchmarks/relabel_cost.py --sizes 4096 16384 40000 --pool 4096 --image-size 32 --classes 43

The images are random: the cost does not depend on what they show. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_setup import PARAMS, add_device_args, device_from, device_name, median_seconds  # noqa: E402

from augment.acceleration import Acceleration  # noqa: E402
from augment.cyclegan import CycleGANConfig, SemanticClassifier, build_cyclegan, relabel  # noqa: E402
from pipelines.config import as_config, load_params  # noqa: E402


def time_labelling(sem, n: int, pool: int, *, classes: int, channels: int, size: int, device: torch.device, repeats: int) -> float:
    """Median seconds of one labelling of `n` random target images with `pool`."""
    target = (torch.rand(n, channels, size, size) * 255).to(torch.uint8)  # as prepared images are stored
    known = torch.full((n,), -1, dtype=torch.long)
    pseudo = known.clone()
    prior = torch.ones(classes)
    rng = torch.Generator(device=device).manual_seed(0)
    return median_seconds(lambda: relabel(sem, target, known, pseudo, prior, pool=pool, rng=rng, device=device), device, repeats,
                          warmup=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--pool", type=int, default=None, help="default: params.yaml's gan.cyclegan.relabel_pool")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=43)
    ap.add_argument("--repeats", type=int, default=3)
    add_device_args(ap)
    a = ap.parse_args()
    device = device_from(a)
    p = load_params(PARAMS)
    cfg = dataclasses.replace(as_config(p.gan.cyclegan, CycleGANConfig), lambda_semantic=max(p.gan.cyclegan.lambda_semantic, 1.0))
    pool = a.pool or cfg.relabel_pool
    accel = Acceleration.choose(device, precision=p.runtime.precision, compile=False)
    nets = build_cyclegan(cfg, a.channels, a.classes)
    accel.place(nets.C, device)
    sem = SemanticClassifier(nets.C, [], cfg, device=device, accel=accel)
    rows = []
    for n in a.sizes:
        kw = dict(classes=a.classes, channels=a.channels, size=a.image_size, device=device, repeats=a.repeats)
        whole = time_labelling(sem, n, n, **kw)
        pooled = time_labelling(sem, n, pool, **kw) if n > pool else whole
        rows.append({"target_images": n, "whole_set_s": round(whole, 3), "pool": pool, "pooled_s": round(pooled, 3)})
        print(f"{n:>7} target images: whole set {whole:8.3f} s per labelling, pool of {pool}: {pooled:8.3f} s", flush=True)
    print(json.dumps({"device": device_name(device), "image_size": a.image_size, "classes": a.classes, "bf16": accel.bf16, "rows": rows}))


if __name__ == "__main__":
    main()
