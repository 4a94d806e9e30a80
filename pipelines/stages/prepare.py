"""DVC stage `prepare`: the data contract -> data/prepared/ (pixels.npy, manifest.csv, rejected.csv, duplicates.csv,
repeats.csv, label_conflicts.csv, domain_copies.csv)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from augment.colour import colour_sample_notes
from augment.prepare import PrepareConfig, prepare, repeated_copies
from pipelines.config import load_params
from pipelines.cpu_threads import idle_cores
from pipelines.runtime import add_timings_arg, run_stage, stage_timer

OUT = Path("data/prepared")
INDEX = Path("data/raw_index.json")  # index_raw's: what dvc.lock pins as read


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--index", type=Path, default=INDEX, help=f"index_raw's listing that every file read must match (default: {INDEX})")
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    d = params.data
    cfg = PrepareConfig(
        dataset=d.dataset, root=d.root, source=d.source, target=d.target, image_size=d.image_size,
        channels=d.channels, split_seed=d.split_seed,
        test_fraction_source=d.test_fraction_source, test_fraction_target=d.test_fraction_target,
        max_image_pixels=d.max_image_pixels, resize=d.resize, colour_profiles=d.colour_profiles, classes=tuple(d.classes),
        index=str(args.index) if d.dataset == "folders" and args.index.is_file() else None,
        workers=idle_cores(params.runtime.threads) if d.dataset == "folders" else 1,  # the digits are no files
    )
    with stage_timer("prepare", args.timings_dir) as info:
        manifest = prepare(cfg, args.out)
        info["images"] = len(manifest)
    rejected = len(pd.read_csv(args.out / "rejected.csv"))  # rows, not lines: a file name may hold a newline
    duplicates = len(pd.read_csv(args.out / "duplicates.csv"))
    conflicts = len(pd.read_csv(args.out / "label_conflicts.csv"))
    repeated = repeated_copies(pd.read_csv(args.out / "repeats.csv", usecols=["domain", "picture"], keep_default_na=False, dtype=str))
    copies = pd.read_csv(args.out / "domain_copies.csv", usecols=["domain"], keep_default_na=False, dtype=str)
    copied = int((copies.domain == d.target).sum())
    print(f"prepare: {len(manifest)} images -> {args.out}/manifest.csv; {rejected} rejected -> {args.out}/rejected.csv"
          + (f"; {duplicates} files of one picture in both train and test -> {args.out}/duplicates.csv (they inflate test scores)"
             if duplicates else "")
          + (f"; {repeated} test images repeated within their split -> {args.out}/repeats.csv (each counts as often)" if repeated else "")
          + (f"; {conflicts} files of one picture under different classes -> {args.out}/label_conflicts.csv (one image, two labels)"
             if conflicts else "")
          + (f"; {copied} target images identical to source images -> {args.out}/domain_copies.csv (they shrink the shift measured)"
             if copied else ""))
    if d.dataset == "folders":  # colour the run drops, three copies of a grey channel, or colour stored differently
        paths = {domain: [Path(p) for p in manifest.source_path[manifest.domain == domain]] for domain in (d.source, d.target)}
        for note in colour_sample_notes(paths, d.channels, d.colour_profiles):
            print(f"prepare: note: {note}", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
