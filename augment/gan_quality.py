"""GAN quality without downloaded weights: FID/KID (torchmetrics) on features of a classifier trained in the pipeline.

The feature network is the target-trained `oracle` classifier when it exists (it knows what
target images look like), otherwise `source_only`; `feature_extractor` in metrics.json names it.
torchmetrics computes FID and KID with that network's pooled features as a custom feature module
(`num_features` given, so no Inception weights are needed or fetched). KID averages `kid_subsets`
random subsets of up to 500 images (fewer when the test set is smaller) and reports their spread
as `kid_subset_std`. Label preservation is the classifier's accuracy on synthetic images against
the labels of the source images they were translated from.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from augment.mixing import LabeledImages


class PooledFeatures(nn.Module):
    """A classifier's `features()` as the feature module torchmetrics calls: (B, C, H, W) -> (B, D)."""

    def __init__(self, model: nn.Module, num_features: int):
        super().__init__()
        self.model = model
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


@torch.no_grad()
def gan_quality(model: nn.Module, real_target: torch.Tensor, synthetic: LabeledImages, *, feature_extractor: str, seed: int = 0,
                kid_subsets: int = 50, kid_subset_size: int = 500, batch_size: int = 512) -> dict:
    model.eval()
    dim = model.features(real_target[:2]).shape[1]
    features = PooledFeatures(model, dim)
    fid = FrechetInceptionDistance(feature=features, normalize=True)  # float images go to the module unchanged
    size = min(kid_subset_size, len(real_target), len(synthetic))
    kid = KernelInceptionDistance(feature=features, subsets=kid_subsets, subset_size=size, normalize=True)
    for images, real in ((real_target, True), (synthetic.images, False)):
        for i in range(0, len(images), batch_size):
            fid.update(images[i : i + batch_size], real=real)
            kid.update(images[i : i + batch_size], real=real)
    with torch.random.fork_rng(devices=[]):  # KID draws its subsets from torch's global generator
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    preds = torch.cat([model(synthetic.images[i : i + batch_size]).argmax(1) for i in range(0, len(synthetic), batch_size)])
    return {
        "fid": float(fid.compute()),
        "kid": float(kid_mean),
        "kid_subset_std": float(kid_std),
        "feature_extractor": feature_extractor,
        "label_preservation": float((preds == synthetic.labels).float().mean()),
    }


def summarize_gan_seeds(per_seed: dict[int, dict]) -> dict:
    """One GAN kind's quality over its seeds: the mean of each figure (the contract's keys), its
    spread over GAN seeds (`<key>_seed_std`, 0 with one seed), and every seed's own figures."""
    first = next(iter(per_seed.values()))
    out: dict = {}
    for key in ("fid", "kid", "kid_subset_std", "label_preservation", "kept_fraction"):
        if key not in first:
            continue
        values = np.array([q[key] for q in per_seed.values()], dtype=float)
        out[key] = float(values.mean())
        if key != "kid_subset_std":
            out[f"{key}_seed_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    out["feature_extractor"] = first["feature_extractor"]
    out["per_seed"] = {str(seed): {k: v for k, v in q.items() if k != "feature_extractor"} for seed, q in per_seed.items()}
    return out

