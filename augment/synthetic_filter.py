"""Synthetic filtering: keep only translations whose label an independent classifier confirms.

`synthesize.filter: confirmed` trains a small classifier on the real labeled source train set
(never on translations, and not the GAN's own semantic classifier, which the generator was
trained to satisfy) and keeps a translated image only when that classifier reads it as the label
of the source image it came from. A translation that changed the class is then dropped instead
of teaching the downstream classifier something false. How many were kept, per class too, goes
into `filter.json` beside the synthetic set and into the report.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from augment.classify import ClassifierConfig, predict, train_classifier
from augment.mixing import LabeledImages, MixedBatches

FILTERS = ("none", "confirmed")


@dataclass(frozen=True)
class FilterConfig:
    kind: str = "none"  # none | confirmed
    judge_steps: int = 400
    judge_width: int = 32


def confirmed(source: LabeledImages, fake: torch.Tensor, labels: torch.Tensor, cfg: FilterConfig, *, num_classes: int,
              seed: int, device: str | torch.device = "cpu", precision: str = "auto") -> torch.Tensor:
    """(N,) bool: which of the `fake` images a classifier trained on `source` alone reads as `labels`."""
    judge_cfg = ClassifierConfig(width=cfg.judge_width, steps=cfg.judge_steps)
    batches = MixedBatches(parts={"source": (source, 1.0)}, batch_size=judge_cfg.batch_size, seed=seed)
    judge = train_classifier(batches, judge_cfg, in_channels=source.images.shape[1], num_classes=num_classes, seed=seed, device=device,
                             precision=precision)
    return predict(judge, fake, device=device, precision=precision) == labels


def keep_mask(source: LabeledImages, fake: torch.Tensor, labels: torch.Tensor, cfg: FilterConfig, *, num_classes: int,
              seed: int, device: str | torch.device = "cpu", precision: str = "auto") -> tuple[torch.Tensor, dict]:
    """The images to keep under `cfg.kind`, and a summary: total, kept, kept fraction, per class
    (`precision`: runtime.precision, as for the classifiers)."""
    if cfg.kind not in FILTERS:
        raise ValueError(f"synthesize.filter must be one of {FILTERS}, got {cfg.kind!r}")
    keep = torch.ones(len(fake), dtype=torch.bool) if cfg.kind == "none" else confirmed(
        source, fake, labels, cfg, num_classes=num_classes, seed=seed, device=device, precision=precision)
    per_class = {int(c): {"total": int((labels == c).sum()), "kept": int(((labels == c) & keep).sum())} for c in torch.unique(labels)}
    summary = {"filter": cfg.kind, "total": len(fake), "kept": int(keep.sum()), "kept_fraction": float(keep.float().mean()),
               "per_class": per_class, "classes_with_none_kept": [c for c, n in per_class.items() if n["kept"] == 0]}
    return keep, summary
