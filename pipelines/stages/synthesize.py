"""DVC stage `synthesize@<gan>-<seed>`: translate the labeled source train set into the target domain.

Writes data/synthetic/<gan>/<seed>/ (with the generator of artifacts/gan/<gan>/<seed>/): pixels.npy (the
images, row i = manifest row i), manifest.csv (path, source_path, label, label_index), the same images as
images/<class>/<id>.png for people (not hashed by DVC), filter.json (what synthesize.filter kept) and samples.png. Each image keeps the label
of the source image it was translated from; a class-conditional generator (cgan) is also told that
label. With `synthesize.filter: confirmed` only the translations that a classifier trained on real
source alone reads as their label are written (augment/synthetic_filter.py).
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from augment.arms import GANS
from augment.contract import listed_classes
from augment.cyclegan import is_conditional, load_generator, translate
from augment.dataset import load_prepared
from augment.images import to_uint8
from augment.io import atomic_dir, write_csv, write_json
from augment.pixels import write_pixels, write_pngs
from augment.samples import save_grid
from augment.synthetic_filter import FilterConfig, keep_mask
from pipelines.config import as_config, load_params
from pipelines.runtime import add_timings_arg, gan_stage_parser, run_stage, select_device, stage_timer



def main(argv: list[str] | None = None) -> None:
    ap = gan_stage_parser(__doc__, GANS)
    ap.add_argument("--gan-dir", type=Path, default=None, help="default: artifacts/gan/<gan>/<seed>")
    ap.add_argument("--out", type=Path, default=None, help="default: data/synthetic/<gan>/<seed>")
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    gan_dir = args.gan_dir or Path("artifacts/gan") / args.gan / str(args.seed)
    out = args.out or Path("data/synthetic") / args.gan / str(args.seed)
    name = f"synthesize@{args.gan}-{args.seed}"
    device = select_device(params.runtime.device, params.runtime.threads)
    with stage_timer(name, args.timings_dir) as info, atomic_dir(out) as tmp:
        data = load_prepared(args.prepared)
        # uint8 in and out (a quarter of float32's memory each): the filter judges the images as they are saved
        source, rows = data.labeled("source", "train", uint8=True)
        generator = load_generator(gan_dir / "G_st.pt", device=device)
        labels = source.labels if is_conditional(generator) else None  # a cgan image is made for its label
        t0 = time.perf_counter()
        fake = translate(generator, source.images, labels, device=device, precision=params.runtime.precision, uint8=True)  # (N, C, H, W)
        info["images_per_s"] = {"translate": round(len(fake) / (time.perf_counter() - t0), 1)}
        keep, summary = keep_mask(source, fake, source.labels, as_config(params.synthesize, FilterConfig, kind=params.synthesize.filter), num_classes=len(data.classes),
                                  seed=args.seed, device=device, precision=params.runtime.precision)
        summary["per_class"] = {data.classes[c]: n for c, n in summary["per_class"].items()}
        summary["classes_with_none_kept"] = [data.classes[c] for c in summary["classes_with_none_kept"]]
        write_json(summary, tmp / "filter.json")
        kept = keep.nonzero().flatten().tolist()  # positions in the source train set
        write_pixels(to_uint8(fake[kept]), tmp)
        records = [{"path": (Path("images") / row.label / f"{i:06d}.png").as_posix(), "source_path": row.path, "label": row.label,
                    "label_index": row.label_index} for i, row in zip(kept, rows.iloc[kept].itertuples())]
        manifest = pd.DataFrame(records, columns=["path", "source_path", "label", "label_index"])
        write_csv(manifest, tmp / "manifest.csv")
        write_pngs(tmp, manifest)
        pick = list(range(0, len(fake), max(1, len(fake) // 16)))[:16]
        save_grid([source.images[pick], fake[pick]], tmp / "samples.png", labels=["source", "translated"])
        info["images"] = len(records)
    note = f" (synthesize.filter {summary['filter']}: kept {summary['kept']} of {summary['total']})" if summary["filter"] != "none" else ""
    print(f"{name}: {len(records)} labeled target-style images -> {out}{note}")
    if summary["classes_with_none_kept"]:
        print(f"{name}: warning: synthesize.filter {summary['filter']} kept no translation of {listed_classes(summary['classes_with_none_kept'])}; "
              f"the {args.gan} arm's synthetic images hold none of them (the report warns too)")


if __name__ == "__main__":
    run_stage(main)
