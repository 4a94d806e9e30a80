"""GAN quality without downloaded weights: FID/KID on features of a classifier trained in the pipeline.

The feature network is the target-trained `oracle` classifier when it exists (it knows what
target images look like), otherwise `source_only`; `feature_extractor` in metrics.json names it.
Label preservation is that classifier's accuracy on synthetic images against the labels of the
source images they were translated from.
"""
from __future__ import annotations

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
