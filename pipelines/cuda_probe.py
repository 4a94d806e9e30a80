"""Whether torch would find a CUDA device, answered without importing torch.

The flow's own process trains nothing: it asks only to choose how many stages run at once (one on a
GPU, `flows.default_jobs`), and `import torch` costs it about 2 s on a 2-core machine, on every run,
one with nothing to do too. So the question goes where torch itself takes it on Linux: whether this
torch build has CUDA at all (its `libtorch_cuda` library beside the others), then the CUDA driver
(`cuInit`, `cuDeviceGetCount`, which honour CUDA_VISIBLE_DEVICES as torch does). Where the answer is
not that plain (another system, a ROCm build, a driver library that does not load as expected),
torch is asked.
"""
from __future__ import annotations

import ctypes
import importlib.util
import sys
from pathlib import Path


def cuda_available() -> bool:
    """What `torch.cuda.is_available()` says, in milliseconds where it can be told without torch."""
    answer = _without_torch()
    if answer is None:
        import torch

        return torch.cuda.is_available()
    return answer


def _without_torch() -> bool | None:
    """True or False as torch would say, or None where only torch can tell."""
    if not sys.platform.startswith("linux"):
        return None
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None  # torch's own import then fails with its own message
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    if not (lib / "libtorch_cpu.so").is_file() or (lib / "libtorch_hip.so").exists():
        return None  # an unusual layout, or a ROCm build (its devices are torch.cuda's too)
    if not (lib / "libtorch_cuda.so").is_file():
        return False  # a CPU-only build of torch
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False  # no NVIDIA driver on this machine
    count = ctypes.c_int(0)
    try:
        if driver.cuInit(0) != 0:  # e.g. CUDA_ERROR_NO_DEVICE, also with CUDA_VISIBLE_DEVICES=""
            return False
        if driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return None
    except AttributeError:
        return None
    return count.value > 0
