"""Training speed of the project's CycleGAN step next to the reference yardstick.

Runs `augment.cyclegan.train_cyclegan` with the reference architecture (ResNet-9 ngf 64,
3-layer PatchGAN ndf 64, 3 channels) at the given size and batch, then the reference script
(`reference_cyclegan_step.py`, path given or found in ../shared/bench) in a subprocess on the same
machine, and prints both as JSON with the ratio. With --project-defaults it also times the
step at the sizes params.yaml uses.

    python benchmarks/cyclegan_step.py --size 32 --batch 16 --iters 20
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment.cyclegan import CycleGANConfig, train_cyclegan  # noqa: E402


def time_project_step(cfg: CycleGANConfig, *, channels: int, size: int, warmup: int, iters: int, device: str) -> float:
    """Seconds per iteration, measured between the log at `warmup` steps and the end."""
    cfg = CycleGANConfig(**{**cfg.__dict__, "steps": warmup + iters, "log_every": warmup, "decay_from": 1.0})
    g = torch.Generator().manual_seed(0)
    source = torch.rand(64, channels, size, size, generator=g) * 2 - 1
    target = torch.rand(64, channels, size, size, generator=g) * 2 - 1
    _, state = train_cyclegan(source, target, cfg, device=device)
    first, last = state.history[0], state.history[-1]
    return (last["seconds"] - first["seconds"]) / (last["step"] - first["step"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reference", type=Path, default=Path(__file__).resolve().parents[2] / "shared/bench/reference_cyclegan_step.py")
    ap.add_argument("--project-defaults", action="store_true", help="also time the params.yaml CycleGAN at its image size")
    a = ap.parse_args()

    ref_cfg = CycleGANConfig(batch_size=a.batch, ngf=64, n_blocks=9, ndf=64, d_layers=3, pool_size=50)
    s = time_project_step(ref_cfg, channels=3, size=a.size, warmup=a.warmup, iters=a.iters, device=a.device)
    result = {"size": a.size, "batch": a.batch, "device": a.device,
              "project": {"s_per_iter": round(s, 5), "img_pairs_per_s": round(a.batch / s, 2)}}
    if a.reference.is_file():
        out = subprocess.run([sys.executable, str(a.reference), "--size", str(a.size), "--batch", str(a.batch),
                              "--iters", str(a.iters), "--warmup", str(a.warmup), "--device", a.device],
                             capture_output=True, text=True, check=True)
        ref = json.loads(out.stdout.strip().splitlines()[-1])
        result["reference"] = {"s_per_iter": ref["s_per_iter"], "img_pairs_per_s": ref["img_pairs_per_s"]}
        result["project_over_reference_throughput"] = round(result["project"]["img_pairs_per_s"] / ref["img_pairs_per_s"], 3)
    else:
        result["reference"] = f"not found at {a.reference}; pass --reference"
    if a.project_defaults:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from pipelines.config import load_params

        p = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
        cfg = p.gan.cyclegan.train_config()
        s = time_project_step(cfg, channels=p.data.channels, size=p.data.image_size, warmup=a.warmup, iters=a.iters, device=a.device)
        result["params_yaml"] = {"size": p.data.image_size, "batch": cfg.batch_size, "s_per_iter": round(s, 5),
                                 "img_pairs_per_s": round(cfg.batch_size / s, 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
