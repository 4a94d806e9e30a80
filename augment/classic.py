"""Classic weather and lighting augmentation with albumentations: what most teams already do.

The `classic` arm trains on source images passed through these transforms on the fly, and
`cyclegan_classic` applies them on top of the CycleGAN's translations. The list comes from
params.yaml (`classic.transforms`): each entry names an albumentations transform, its probability
`p` and its arguments, e.g. `{name: RandomFog, p: 0.3, fog_coef_range: [0.3, 0.6]}`.

albumentations 2.x only warns about argument names it does not know and then runs the transform
with its defaults, so every transform is built with `strict=True`: a misspelt or 1.x-style argument
is an error that names it. Weather transforms (snow, fog, rain, sun flare, shadow) need 3 channels:
grey images go through as 3 equal channels and come back as their mean. Sizes in albumentations
are in pixels (a sun flare's `src_radius` of 400 whites out a 32 px image): set them for the
pipeline's `data.image_size`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from augment.classic_spec import DEFAULT_TRANSFORMS, ClassicSpecError, build_pipeline, build_transform  # noqa: F401 - re-exported


def _to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W, 3) uint8 (grey repeated to 3 channels)."""
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def _from_uint8_hwc(arr: np.ndarray, channels: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr)).float().permute(2, 0, 1)
    if channels == 1:
        t = t.mean(0, keepdim=True)
    return t / 127.5 - 1


def apply_pipeline(pipeline, images: torch.Tensor) -> torch.Tensor:
    """Apply an albumentations pipeline to (B, C, H, W) images in [-1, 1] (C = 1 or 3)."""
    channels = images.shape[1]
    return torch.stack([_from_uint8_hwc(pipeline(image=_to_uint8_hwc(x))["image"], channels) for x in images])


def classic_transform(specs: list[dict[str, Any]], *, seed: int) -> Callable[[torch.Tensor, np.random.Generator], torch.Tensor]:
    """A `MixedBatches` transform: the configured pipeline, seeded by the classifier seed."""
    pipeline = build_pipeline(specs, seed=seed)

    def transform(images: torch.Tensor, _rng: np.random.Generator) -> torch.Tensor:
        return apply_pipeline(pipeline, images)

    return transform


def changed_draw(specs: list[dict[str, Any]], images: torch.Tensor, *, seed: int = 0, tries: int = 20) -> torch.Tensor:
    """`images` through the configured pipeline, each drawn again (up to `tries` times, seeded) while it
    comes out unchanged: a picture of what the transforms do. One draw leaves most images as they are,
    each transform applying with its own p, and a grid of untouched images showed nothing."""
    pipeline = build_pipeline(specs, seed=seed)
    out = apply_pipeline(pipeline, images)
    for _ in range(tries - 1):
        same = (out == images).flatten(1).all(1)
        if not same.any():
            break
        out[same] = apply_pipeline(pipeline, images[same])
    return out
