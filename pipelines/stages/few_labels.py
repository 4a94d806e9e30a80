"""DVC stage `few_labels`: which labeled target train images the few-label consumers may see.

Writes data/labels/gan-<gan>.csv and data/labels/arm-<arm>.csv (augment/few_labels.py): the
`data.target_labels_per_class` chosen images per class for the conditional GAN and the arms that
see a few target labels (`target_few`, `cyclegan_few`, `cgan_few`), the header alone for everyone
else. Each `train_gan` stage depends on its own file, each `train_classifier` stage on its arm's
pin of it (the arm_inputs stage), so changing
`data.target_labels_per_class` re-runs neither `prepare` nor what reads no labels.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from augment.arms import ARMS, GANS
from augment.few_labels import shortfall_warning, write_consumer_files
from augment.io import atomic_dir, read_manifest
from pipelines.config import load_params
from pipelines.runtime import add_timings_arg, run_stage, stage_timer

OUT = Path("data/labels")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--out", type=Path, default=OUT)
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params, build_transforms=False)  # no torch here: prepare has built them
    readers = {gan for gan in GANS if getattr(params.gan, gan).conditional}
    manifest = read_manifest(args.prepared, written_by="prepare")
    with stage_timer("few_labels", args.timings_dir) as info, atomic_dir(args.out) as tmp:
        few = write_consumer_files(manifest, params.data.target_labels_per_class, params.data.split_seed, tmp, gans_that_read=readers)
        info["images"] = len(few)
    arms = [name for name, arm in ARMS.items() if arm.target_labels == "few"]  # all of them: classifier.arms is no param of this stage
    print(f"few_labels: {len(few)} labeled target train images visible to {', '.join(sorted(readers)) or 'no GAN'} and to the "
          f"arms {', '.join(arms)} -> {args.out}")
    warning = shortfall_warning(manifest, params.data.target_labels_per_class, consumers=", ".join(arms + sorted(readers)))
    if warning:
        print(f"few_labels: {warning}", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
