"""Images/s of the two inference paths, next to a plain float32 loop over the same network and batches.

- translation: `augment.cyclegan.translate` (what `synthesize` and evaluate's `test_time` run:
  batched, `torch.inference_mode`, the precision and layout `runtime.precision` chooses: bf16 and
  NCHW on a GPU (uncompiled, NHWC measured slower there), bf16 on a CPU with bf16 units);
- classification: `augment.classify.predict` (what `evaluate` runs with every classifier on both test
  sets: batched, `inference_mode`, channels_last, bf16 on a GPU).

The plain loop is what one writes first: float32, NCHW, `torch.no_grad`, the same batches. Networks
are params.yaml's (the CycleGAN's G_st, the classifier) at params.yaml's image size, or with
`--reference` the reference ResNet-9 generator (ngf 64) and the default `small_cnn` (width 32) at
`--size`, `runtime.precision: auto`; that run reads no params.yaml, so it needs only torch (and the
project's own modules), not the pipeline's config stack. Random weights and images: the cost does not
depend on them.

    python benchmarks/inference_throughput.py                        # the default run's networks
    python benchmarks/inference_throughput.py --reference --size 256 --images 512 --batch 64

Each figure is the median of `--repeats` timed passes over `--images` images after one warm-up
pass. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_setup import PARAMS, REFERENCE_ARCH, add_device_args, device_from, device_name, median_seconds  # noqa: E402

from augment.classify import predict  # noqa: E402
from augment.cyclegan import CycleGANConfig, build_cyclegan, is_conditional, translate  # noqa: E402
from models.classifiers import build_classifier  # noqa: E402


def plain_loop(net: torch.nn.Module, images: torch.Tensor, batch: int, device: torch.device,
               labels: torch.Tensor | None = None) -> Callable[[], None]:
    """Float32, NCHW, no_grad: the first loop one writes (a conditional generator also gets the labels)."""
    def run() -> None:
        net.float().to(device=device, memory_format=torch.contiguous_format).eval()
        with torch.no_grad():
            for i in range(0, len(images), batch):
                x = images[i : i + batch].to(device)
                (net(x) if labels is None else net(x, labels[i : i + batch].to(device))).cpu()
    return run


def rates(name: str, project: Callable[[], object], plain: Callable[[], None], n: int, device: torch.device, repeats: int) -> dict:
    # plain first: the project's path leaves the network in its own layout, the plain loop resets it
    p_plain = n / median_seconds(plain, device, repeats)
    p_project = n / median_seconds(project, device, repeats)
    print(f"{name}: project {p_project:,.0f} images/s, plain float32 loop {p_plain:,.0f} ({p_project / p_plain:.2f}x)", flush=True)
    return {"project_images_per_s": round(p_project, 1), "plain_fp32_images_per_s": round(p_plain, 1),
            "project_over_plain": round(p_project / p_plain, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=256, help="translation batch (the classifier predicts in its own 512)")
    ap.add_argument("--reference", action="store_true", help="the reference ResNet-9 generator at --size instead of params.yaml's")
    ap.add_argument("--size", type=int, default=256, help="with --reference: image size")
    ap.add_argument("--repeats", type=int, default=3)
    add_device_args(ap)
    a = ap.parse_args()
    device = device_from(a)
    channels, classes = 3, 10
    if a.reference:
        cfg, size, precision = CycleGANConfig(**REFERENCE_ARCH), a.size, "auto"
        model, width = "small_cnn", 32
    else:
        from pipelines.config import as_config, load_params  # pydantic: only for params.yaml's networks

        p = load_params(PARAMS)
        cfg, size, precision = as_config(p.gan.cyclegan, CycleGANConfig), p.data.image_size, p.runtime.precision
        model, width = p.classifier.model, p.classifier.width
    torch.manual_seed(0)
    generator = build_cyclegan(cfg, channels, classes).G_st
    labels = torch.arange(a.images) % classes
    images = torch.rand(a.images, channels, size, size) * 2 - 1
    result: dict = {
        "device": device_name(device),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "image_size": size, "images": a.images,
        "generator": "reference resnet-9, ngf 64" if a.reference else f"params.yaml gan.cyclegan ({cfg.generator}, ngf {cfg.ngf})",
    }
    made_for = labels if is_conditional(generator) else None  # a conditional generator is told the class
    result["translate"] = {"batch": a.batch, **rates(
        "translate", lambda: translate(generator, images, made_for, batch_size=a.batch, device=device, precision=precision),
        plain_loop(generator, images, a.batch, device, made_for), a.images, device, a.repeats)}
    classifier = build_classifier(model, in_channels=channels, num_classes=classes, width=width)
    result["predict"] = {"batch": 512, **rates("predict", lambda: predict(classifier, images, device=device),
                                               plain_loop(classifier, images, 512, device), a.images, device, a.repeats)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
