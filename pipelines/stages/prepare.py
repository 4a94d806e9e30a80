"""DVC stage `prepare`: the data contract -> data/prepared/ (images, manifest.csv, rejected.csv)."""
from __future__ import annotations

import argparse
from pathlib import Path

from augment.io import write_json
from augment.prepare import PrepareConfig, prepare
from pipelines.config import load_params
from pipelines.runtime import run_stage, stage_timer

OUT = Path("data/prepared")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    d = load_params(args.params).data
    cfg = PrepareConfig(
        dataset=d.dataset, root=d.root, source=d.source, target=d.target, image_size=d.image_size,
        channels=d.channels, target_labels_per_class=d.target_labels_per_class, split_seed=d.split_seed,
        test_fraction_source=d.test_fraction_source, test_fraction_target=d.test_fraction_target,
        max_image_pixels=d.max_image_pixels,
    )
    record: dict = {}
    with stage_timer("prepare", record):
        manifest = prepare(cfg, args.out)
    record["images"] = len(manifest)
    write_json(record, args.out / "stage.json")
    rejected = sum(1 for _ in open(args.out / "rejected.csv")) - 1
    print(f"prepare: {len(manifest)} images -> {args.out}/manifest.csv; {rejected} rejected -> {args.out}/rejected.csv")


if __name__ == "__main__":
    run_stage(main)
