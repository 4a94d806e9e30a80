"""GAN quality without downloaded weights: FID/KID on features of a classifier trained in the pipeline.

The feature network is the target-trained `oracle` classifier when it exists (it knows what
target images look like), otherwise `source_only`; `feature_extractor` in metrics.json names it.
Label preservation is that classifier's accuracy on synthetic images against the labels of the
source images they were translated from.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from augment.metrics import frechet_distance, kernel_distance
from augment.mixing import LabeledImages


@torch.no_grad()
def _features(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([model.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


@torch.no_grad()
def gan_quality(model: nn.Module, real_target: torch.Tensor, synthetic: LabeledImages, *, feature_extractor: str, seed: int = 0) -> dict:
    model.eval()
    real = _features(model, real_target).double().numpy()
    fake = _features(model, synthetic.images).double().numpy()
    preds = torch.cat([model(synthetic.images[i : i + 512]).argmax(1) for i in range(0, len(synthetic), 512)])
    return {
        "fid": frechet_distance(real, fake),
        "kid": kernel_distance(real, fake, seed=seed),
        "feature_extractor": feature_extractor,
        "label_preservation": float((preds == synthetic.labels).float().mean()),
    }


def summarize_gan_seeds(per_seed: dict[int, dict]) -> dict:
    """One GAN kind's quality over its seeds: the mean of each figure (the contract's keys), its
    spread over seeds (`<key>_std`, 0 with one seed), and every seed's own figures."""
    first = next(iter(per_seed.values()))
    out: dict = {}
    for key in ("fid", "kid", "label_preservation", "kept_fraction"):
        if key not in first:
            continue
        values = np.array([q[key] for q in per_seed.values()], dtype=float)
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    out["feature_extractor"] = first["feature_extractor"]
    out["per_seed"] = {str(seed): {k: v for k, v in q.items() if k != "feature_extractor"} for seed, q in per_seed.items()}
    return out

