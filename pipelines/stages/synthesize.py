"""DVC stage `synthesize@<gan>`: translate the labeled source train set into the target domain.

Writes data/synthetic/<gan>/: images/<class>/<id>.png, manifest.csv (path, source_path, label,
label_index) and samples.png. Each image keeps the label of the source image it
was translated from; a class-conditional generator (cgan) is also told that label.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from augment.arms import GANS
from augment.cyclegan import is_conditional, load_generator, translate
from augment.dataset import load_prepared
from augment.images import save_png, to_uint8
from augment.io import atomic_dir, write_csv
from augment.samples import save_grid
from pipelines.config import load_params
from pipelines.runtime import add_timings_arg, run_stage, select_device, stage_timer



def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gan", required=True, choices=GANS)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--gan-dir", type=Path, default=None, help="default: artifacts/gan/<gan>")
    ap.add_argument("--out", type=Path, default=None, help="default: data/synthetic/<gan>")
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    gan_dir = args.gan_dir or Path("artifacts/gan") / args.gan
    out = args.out or Path("data/synthetic") / args.gan
    device = select_device(params.runtime.device, params.runtime.threads)
    with stage_timer(f"synthesize@{args.gan}", args.timings_dir) as info, atomic_dir(out) as tmp:
        data = load_prepared(args.prepared)
        source, rows = data.labeled("source", "train")
        generator = load_generator(gan_dir / "G_st.pt", device=device)
        labels = source.labels if is_conditional(generator) else None  # a cgan image is made for its label
        fake = translate(generator, source.images, labels, device=device)  # (N, C, H, W)
        arrays = to_uint8(fake)
        records = []
        for i, (arr, row) in enumerate(zip(arrays, rows.itertuples())):
            rel = Path("images") / row.label / f"{i:06d}.png"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            save_png(arr, tmp / rel)
            records.append({"path": rel.as_posix(), "source_path": row.path, "label": row.label, "label_index": row.label_index})
        write_csv(pd.DataFrame(records), tmp / "manifest.csv")
        pick = list(range(0, len(fake), max(1, len(fake) // 16)))[:16]
        save_grid([source.images[pick], fake[pick]], tmp / "samples.png")
        info["images"] = len(records)
    print(f"synthesize@{args.gan}: {len(records)} labeled target-style images -> {out}")


if __name__ == "__main__":
    run_stage(main)
