"""Translator quality on prepared data: does a GAN's output keep its labels, and does it help?

Trains one GAN (`cyclegan` or `cgan`) with params.yaml's settings plus `--set` overrides on
`data/prepared` (run `dvc repro prepare` first, with the data you want), translates the labeled
source train set, and trains small classifiers with the pipeline's own code:

- `oracle` (all target train labels, when the split has them), which the GAN never saw: its
  accuracy on the translated images against their source labels is `label_preservation`;
- `source_only` and the GAN arm (source + translations at `mix.synthetic_fraction`), scored on
  target test; `gap_closed` = (arm - source_only) / (oracle - source_only);
- FID, precision and recall of the translations against real target train on that oracle's
  features (the pipeline's `gan_quality`), beside the same figures for the untranslated source
  (`untranslated`): a translator whose figures are worse than those moved nothing toward the target.

    python benchmarks/translator_quality.py --gan cyclegan --set lambda_semantic=1 --seeds 0 1
    python benchmarks/translator_quality.py --gan cgan --set steps=400

Last line: one JSON object. This is a development yardstick (one GAN seed, few classifier
seeds); the pipeline's report, with its intervals, is the measurement of record.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment.acceleration import Acceleration  # noqa: E402
from augment.arms import ARMS, training_parts  # noqa: E402
from augment.classify import ClassifierConfig, predict, train_classifier  # noqa: E402
from augment.cyclegan import CycleGANConfig, is_conditional, train_cyclegan, translate  # noqa: E402
from augment.dataset import load_prepared  # noqa: E402
from augment.few_labels import consumer_file  # noqa: E402
from augment.gan_quality import features_and_predictions, frechet_distance, precision_recall  # noqa: E402
from augment.mixing import LabeledImages, MixedBatches  # noqa: E402
from augment.samples import save_grid  # noqa: E402
from pipelines.config import as_config, parse_params, set_keys  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gan", choices=("cyclegan", "cgan"), default="cyclegan")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--labels", type=Path, default=Path("data/labels"), help="the few_labels stage's folder (dvc repro few_labels)")
    ap.add_argument("--set", action="append", default=[], help="gan.<gan>.KEY=VALUE override (repeatable)")
    ap.add_argument("--classifier", action="append", default=[], help="classifier.KEY=VALUE override (repeatable)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="classifier seeds")
    ap.add_argument("--gan-seed", type=int, default=0, help="the GAN's seed (as one entry of gan.seeds)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto", help="as runtime.precision, for the GAN")
    ap.add_argument("--samples", type=Path, default=None, help="write a source | translated grid here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    raw = set_keys(yaml.safe_load(Path(args.params).read_text()), f"gan.{args.gan}", args.set)
    params = parse_params(set_keys(raw, "classifier", args.classifier), "params.yaml + overrides")
    gp = getattr(params.gan, args.gan)
    cfg = as_config(gp, CycleGANConfig, seed=args.gan_seed, conditional=gp.conditional)
    data = load_prepared(args.prepared, few_labels=consumer_file(args.labels, gan=args.gan))
    k = len(data.classes)

    source, _ = data.labeled("source", "train")
    target = data.images("target", "train")
    # The few visible target labels this GAN's file shows (-1 elsewhere): the few_labels stage lists them
    # for the conditional GAN, none for the CycleGAN.
    target_labels = data.visible_target_labels("few")

    t0 = time.perf_counter()
    nets, state = train_cyclegan(source.images, target, cfg, source_labels=source.labels, target_labels=target_labels,
                                 num_classes=k, accel=Acceleration.choose("cpu", precision=args.precision, compile=False),
                                 on_log=lambda s, l: print(f"step {s}: " + " ".join(f"{a}={b:.3g}" for a, b in l.items()), flush=True))
    gan_seconds = time.perf_counter() - t0
    labels = source.labels if is_conditional(nets.G_st) else None
    fake = LabeledImages(translate(nets.G_st, source.images, labels), source.labels)
    if args.samples:
        pick = torch.linspace(0, len(source) - 1, 16).long()
        save_grid([source.images[pick], fake.images[pick]], args.samples, labels=["source", "translated"])

    cp = params.classifier
    test, _ = data.labeled("target", "test")
    target_all, _ = data.labeled("target", "train")
    back = translate(nets.G_ts, test.images)  # target test translated target->source: what test_time reads

    def arm_accuracy(arm: str, seed: int) -> tuple[float, torch.nn.Module]:
        parts = training_parts(ARMS[arm], source=source, target=target_all, synthetic=fake,
                               synthetic_fraction=params.mix.synthetic_fraction, target_fraction=params.mix.target_fraction)
        model = train_classifier(MixedBatches(parts=parts, batch_size=cp.batch_size, seed=seed), as_config(cp, ClassifierConfig),
                                 in_channels=data.channels, num_classes=k, seed=seed)
        return float((predict(model, test.images) == test.labels).float().mean()), model

    result: dict = {"gan": args.gan, "config": {k2: v for k2, v in vars(cfg).items()}, "precision": args.precision,
                    "gan_seconds": round(gan_seconds, 1)}
    scores: dict[str, list[float]] = {"source_only": [], args.gan: [], "oracle": []}
    preservation, per_class, reading, realism = [], [], [], []
    for seed in args.seeds:
        for arm in scores:
            if arm == "oracle" and len(target_all) == 0:
                continue
            acc, model = arm_accuracy(arm, seed)
            scores[arm].append(acc)
            if arm == "oracle":
                kept = (predict(model, fake.images) == fake.labels).float()
                preservation.append(float(kept.mean()))
                per_class.append([float(kept[fake.labels == c].mean()) for c in range(k)])
                realism.append(_realism(model, target_all.images, {"translated": fake.images, "untranslated": source.images}))
            if arm == "source_only":
                reading.append(float((predict(model, back) == test.labels).float().mean()))
    result["target_accuracy"] = {a: round(float(np.mean(v)), 4) for a, v in scores.items() if v}
    result["test_time_accuracy"] = round(float(np.mean(reading)), 4)
    if preservation:
        result["label_preservation"] = round(float(np.mean(preservation)), 4)
        result["preservation_per_class"] = dict(zip(data.classes, np.round(np.mean(per_class, 0), 3).tolist()))
        so, arm, orc = (result["target_accuracy"][a] for a in ("source_only", args.gan, "oracle"))
        result["gap_closed"] = round((arm - so) / max(1e-9, orc - so), 4)
        result["realism"] = {what: {key: round(float(np.mean([r[what][key] for r in realism])), 4) for key in realism[0][what]}
                             for what in realism[0]}
    print(json.dumps(result))


def _realism(model: torch.nn.Module, real: torch.Tensor, sets: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """FID, precision and recall of each of `sets` against `real`, on `model`'s features."""
    feats, _ = features_and_predictions(model, real)
    out = {}
    for what, images in sets.items():
        fake, _ = features_and_predictions(model, images)
        precision, recall = precision_recall(feats, fake) or (float("nan"), float("nan"))  # nan: real images all alike
        out[what] = {"fid": frechet_distance(feats, fake), "precision": precision, "recall": recall}
    return out


if __name__ == "__main__":
    main()
