"""DVC stage `prepare`: the data contract -> data/prepared/ (pixels.npy, manifest.csv, rejected.csv, duplicates.csv)."""
from __future__ import annotations

import argparse
from pathlib import Path

from augment.prepare import PrepareConfig, prepare
from pipelines.config import load_params
from pipelines.runtime import add_timings_arg, run_stage, stage_timer

OUT = Path("data/prepared")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", type=Path, default=OUT)
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    d = load_params(args.params).data
    cfg = PrepareConfig(
        dataset=d.dataset, root=d.root, source=d.source, target=d.target, image_size=d.image_size,
        channels=d.channels, split_seed=d.split_seed,
        test_fraction_source=d.test_fraction_source, test_fraction_target=d.test_fraction_target,
        max_image_pixels=d.max_image_pixels,
    )
    with stage_timer("prepare", args.timings_dir) as info:
        manifest = prepare(cfg, args.out)
        info["images"] = len(manifest)
    rejected = sum(1 for _ in open(args.out / "rejected.csv")) - 1
    duplicates = sum(1 for _ in open(args.out / "duplicates.csv")) - 1
    print(f"prepare: {len(manifest)} images -> {args.out}/manifest.csv; {rejected} rejected -> {args.out}/rejected.csv"
          + (f"; {duplicates} byte-identical files in both train and test -> {args.out}/duplicates.csv (they inflate test scores)"
             if duplicates else ""))


if __name__ == "__main__":
    run_stage(main)
