"""DVC stage `arm_inputs`: data/arms/<arm>.json, the sha256 of every file each arm reads besides
data/prepared and the values of the `mix` and `classic` params it reads (augment/arm_inputs.py).

Each `train_classifier@<arm>-<seed>` depends on its own file instead of every synthetic set and
those params, so a change to one GAN re-runs only the classifiers that learn from it
(`data.target_labels_per_class` only the conditional GAN's arms and those that see a few target
labels: `target_few`, `cyclegan_few`, `cgan_few`), and a change to
`classic.transforms` only the classic arms.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from augment.arm_inputs import write_arm_inputs
from augment.io import atomic_dir
from pipelines.config import load_params
from pipelines.runtime import add_timings_arg, run_stage, stage_timer

OUT = Path("data/arms")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--labels", type=Path, default=Path("data/labels"), help="the few_labels stage's folder")
    ap.add_argument("--synthetic", type=Path, default=Path("data/synthetic"))
    ap.add_argument("--out", type=Path, default=OUT)
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params, build_transforms=False)  # no torch here: prepare has built them
    with stage_timer("arm_inputs", args.timings_dir), atomic_dir(args.out) as tmp:
        pins = write_arm_inputs(tmp, labels=args.labels, synthetic=args.synthetic, gan_seeds=params.gan.seeds,
                                params=params.model_dump(mode="json"), gan_kinds=params.gan.kinds)
    print(f"arm_inputs: {sum(len(p['sha256']) for p in pins.values())} files pinned for {len(pins)} arms, also those "
          f"classifier.arms leaves out ({len(params.classifier.arms)} run) -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
