"""What the benchmark scripts share: the device and thread options, how a result names its device, and a median timer."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"

# The yardstick's networks (reference_cyclegan_step.py): ResNet-9 generators of width 64, 3-layer
# PatchGANs of width 64, an image pool of 50, as `CycleGANConfig` keys (LSGAN and lambda_identity 0.5
# are its defaults). Both speed scripts build the project's networks from this.
REFERENCE_ARCH = {"generator": "resnet", "ngf": 64, "n_blocks": 9, "ndf": 64, "d_layers": 3, "pool_size": 50}


def add_device_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def device_from(a: argparse.Namespace) -> torch.device:
    """Applies --threads; the --device to run on."""
    if a.threads:
        torch.set_num_threads(a.threads)
    return torch.device(a.device)


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"


def median_seconds(run: Callable[[], object], device: torch.device, repeats: int, *, warmup: bool = True) -> float:
    """Median wall seconds of `repeats` calls of `run` (the device synchronised before each reading),
    after one untimed call when `warmup` (cuDNN's algorithm search, allocator, first touch)."""
    if warmup:
        run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]
