"""The GAN speed report: the project's CycleGAN step next to the reference yardstick, same run.

Runs `augment.cyclegan.train_cyclegan` with the reference architecture (ResNet-9 ngf 64,
3-layer PatchGAN ndf 64, 3 channels, LSGAN, pool 50) at the given size and batch, with the
acceleration the pipeline would choose on this device (`runtime.precision`/`runtime.compile`
auto: bf16 autocast, channels_last (kept through Inductor's kernels), torch.compile and fused Adam on CUDA; fused Adam, and bf16 where
the CPU computes it natively (AVX-512 BF16 or AMX), on the CPU), then the
reference script (`reference_cyclegan_step.py`, found in ../shared/bench or given) in a subprocess
on the same machine and device with the same size and batch, and prints both:

- image pairs/s of each and `project_over_reference_throughput`;
- FLOPs per iteration (counted with torch's FlopCounterMode on one float32 step of the project's
  own loop), the TFLOP/s each achieves, and on CUDA the fraction of the device's measured bf16 peak
  (a large bf16 matrix product timed here).

    python benchmarks/cyclegan_step.py --size 64 --batch 4              # the CPU figure
    python benchmarks/cyclegan_step.py --size 256 --batch 32 --iters 30  # on a GPU

`--reference-args "--bf16 --channels-last --compile"` times the yardstick's own fast settings instead
of its defaults. `--project-defaults` adds the params.yaml CycleGAN at its image size (with random
labels where its semantic classifier needs them), and `--set KEY=VALUE` changes one of its keys,
e.g. `--set warp=none` to time the learned warp's cost. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import layout_copies  # noqa: E402
from bench_setup import REFERENCE_ARCH, add_device_args, device_from, device_name  # noqa: E402

from augment.acceleration import Acceleration  # noqa: E402
from augment.cyclegan import CycleGANConfig, train_cyclegan  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "shared/bench/reference_cyclegan_step.py"


def _images(n: int, channels: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1, torch.rand(n, channels, size, size, generator=g) * 2 - 1


def time_project_step(cfg: CycleGANConfig, *, channels: int, size: int, warmup: int, iters: int, device: str,
                      accel: Acceleration) -> float:
    """Seconds per iteration, between the log at `warmup` steps (compilation done) and the end.
    Losses are read only at those two logs, so the loop runs without host synchronisation."""
    cfg = CycleGANConfig(**{**cfg.__dict__, "steps": warmup + iters, "log_every": warmup, "decay_from": 1.0})
    source, target = _images(max(64, 2 * cfg.batch_size), channels, size)
    labels = {}
    if cfg.uses_classifier:  # the semantic classifier (and the conditional GAN) need source labels; random ones cost the same
        labels = {"source_labels": torch.arange(len(source)) % 10, "num_classes": 10}
    _, state = train_cyclegan(source, target, cfg, device=device, accel=accel, **labels)
    first, last = state.history[0], state.history[-1]
    return (last["seconds"] - first["seconds"]) / (last["step"] - first["step"])


def count_flops(cfg: CycleGANConfig, *, channels: int, size: int, device: str) -> int:
    """FLOPs of one training iteration (forward and backward of every network), float32, uncompiled."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = CycleGANConfig(**{**cfg.__dict__, "steps": 1, "log_every": 1})
    source, target = _images(2 * cfg.batch_size, channels, size)
    counter = FlopCounterMode(display=False)
    with counter:
        train_cyclegan(source, target, cfg, device=device, accel=Acceleration())
    return int(counter.get_total_flops())


def bf16_peak_tflops(device: str, n: int = 8192, reps: int = 10) -> float:
    """Measured bf16 matrix-product throughput of the device (mean of `reps` after 3 warm-ups)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def run_reference(a: argparse.Namespace) -> dict:
    """The yardstick's JSON line, from a subprocess with the same size, batch, device and threads."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {})}
    cmd = [sys.executable, str(a.reference), "--size", str(a.size), "--batch", str(a.batch), "--iters", str(a.iters),
           "--warmup", str(a.warmup), "--device", a.device, *a.reference_args.split()]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"the reference step failed ({' '.join(cmd)}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"), help="as runtime.precision")
    ap.add_argument("--compile", default="auto", choices=("auto", "true", "false"), help="as runtime.compile")
    ap.add_argument("--channels-last", default="auto", choices=("auto", "true", "false"))
    add_device_args(ap)  # --threads sets the yardstick's too
    ap.add_argument("--reference", type=Path, default=REFERENCE)
    ap.add_argument("--reference-args", default="", help="extra arguments for the yardstick, e.g. '--bf16 --channels-last --compile'")
    ap.add_argument("--no-flops", action="store_true", help="skip counting FLOPs")
    ap.add_argument("--profile", type=Path, help="also profile a few project steps and write the top kernels, the operators by input shape and the layout copies (benchmarks/layout_copies.py) to this file")
    ap.add_argument("--project-defaults", action="store_true", help="also time the params.yaml CycleGAN at its image size")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="with --project-defaults: override a gan.cyclegan key (repeatable), e.g. --set warp=none")
    a = ap.parse_args()
    if a.size < 32:  # the PatchGAN halves three times, then its instance norm needs more than one pixel
        ap.error(f"--size {a.size}: the reference architecture needs images of at least 32 px")
    device_from(a)  # applies --threads; the code below keeps --device as given
    compile_ = {"auto": "auto", "true": True, "false": False}[a.compile]
    accel = Acceleration.choose(a.device, precision=a.precision, compile=compile_)
    if a.channels_last != "auto":
        accel = Acceleration(**{**accel.__dict__, "channels_last": a.channels_last == "true"})

    ref_cfg = CycleGANConfig(batch_size=a.batch, **REFERENCE_ARCH)
    result: dict = {
        "size": a.size, "batch": a.batch, "device": a.device,
        "device_name": device_name(a.device),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
    }
    # The yardstick runs first, in its own process, while this one holds no GPU memory.
    ref = run_reference(a) if a.reference.is_file() else None
    s = time_project_step(ref_cfg, channels=3, size=a.size, warmup=a.warmup, iters=a.iters, device=a.device, accel=accel)
    if a.device.startswith("cuda"):
        torch.cuda.empty_cache()
    result["project"] = {"acceleration": accel.__dict__, "s_per_iter": round(s, 5), "img_pairs_per_s": round(a.batch / s, 2)}
    if ref is not None:
        result["reference"] = {k: ref[k] for k in ("s_per_iter", "img_pairs_per_s", "bf16", "channels_last", "compile")}
        result["project_over_reference_throughput"] = round(result["project"]["img_pairs_per_s"] / ref["img_pairs_per_s"], 3)
    else:
        result["reference"] = f"not found at {a.reference}; pass --reference"
    if not a.no_flops:
        flops = count_flops(ref_cfg, channels=3, size=a.size, device=a.device)
        result["flops_per_iter"] = flops
        result["project"]["achieved_tflops"] = round(flops / s / 1e12, 3)
        if isinstance(result["reference"], dict):
            result["reference"]["achieved_tflops"] = round(flops / result["reference"]["s_per_iter"] / 1e12, 3)
        if a.device.startswith("cuda"):
            peak = bf16_peak_tflops(a.device)
            result["bf16_peak_tflops_measured"] = round(peak, 1)
            result["project"]["fraction_of_bf16_peak"] = round(flops / s / 1e12 / peak, 3)
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if a.device.startswith("cuda") else [])
        profiled = min(a.iters, 5)
        with profile(activities=activities, record_shapes=True) as prof:
            time_project_step(ref_cfg, channels=3, size=a.size, warmup=a.warmup, iters=profiled, device=a.device, accel=accel)
        key = "self_cuda_time_total" if a.device.startswith("cuda") else "self_cpu_time_total"
        with tempfile.TemporaryDirectory() as tmp:  # the trace holds every operator's strides: which copies, from what layout
            prof.export_chrome_trace(f"{tmp}/trace.json")
            copies = layout_copies.report(Path(tmp, "trace.json"), a.warmup + profiled)
        # By kernel, then by operator and input shapes, then the copies with their layouts and callers.
        a.profile.write_text(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=90) + "\n\n"
                             + prof.key_averages(group_by_input_shape=True).table(sort_by=key, row_limit=40, max_name_column_width=60,
                                                                                  max_shapes_column_width=140)
                             + "\n\n" + layout_copies.format_report(copies))
        result["profile"] = {"file": str(a.profile), **{k: v for k, v in copies.items() if k != "copies"}}
    if a.project_defaults:
        import yaml

        from pipelines.config import as_config, parse_params, set_keys

        raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
        p = parse_params(set_keys(raw, "gan.cyclegan", a.set), "params.yaml + --set")
        cfg = as_config(p.gan.cyclegan, CycleGANConfig)
        s = time_project_step(cfg, channels=p.data.channels, size=p.data.image_size, warmup=a.warmup, iters=a.iters,
                              device=a.device, accel=accel)
        result["params_yaml"] = {"set": a.set, "size": p.data.image_size, "batch": cfg.batch_size, "s_per_iter": round(s, 5),
                                 "img_pairs_per_s": round(cfg.batch_size / s, 2)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
