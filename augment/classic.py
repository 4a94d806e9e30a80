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

import os
from typing import Any, Callable

import numpy as np
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations asks PyPI for updates on import otherwise


# The default list, for 16 px images (params.yaml repeats it; the rgb32 preset scales the pixel sizes).
DEFAULT_TRANSFORMS: tuple[dict[str, Any], ...] = (
    {"name": "RandomSnow", "p": 0.2, "snow_point_range": [0.1, 0.3], "brightness_coeff": 2.0},
    # Uniform fog (haze): contrast pulled toward a bright airlight. RandomFog draws fog blobs instead
    # and costs about 25 ms per 16 px image (0.07 here), which made the classic arms 5x slower to train.
    {"name": "RandomBrightnessContrast", "p": 0.2, "brightness_limit": [0.1, 0.3], "contrast_limit": [-0.6, -0.3]},
    {"name": "RandomRain", "p": 0.2, "rain_type": "drizzle", "drop_length": 3, "drop_width": 1, "blur_value": 1,
     "brightness_coefficient": 0.8},
    {"name": "RandomSunFlare", "p": 0.1, "src_radius": 8, "num_flare_circles_range": [1, 3], "flare_roi": [0, 0, 1, 1]},
    {"name": "RandomShadow", "p": 0.2, "shadow_roi": [0, 0, 1, 1], "num_shadows_limit": [1, 2], "shadow_dimension": 4},
    {"name": "RandomBrightnessContrast", "p": 0.3, "brightness_limit": [-0.5, -0.2], "contrast_limit": [-0.3, 0.1]},
    {"name": "RandomGamma", "p": 0.2, "gamma_limit": [150, 250]},
    {"name": "GaussianBlur", "p": 0.2, "blur_limit": [3, 3], "sigma_limit": [0.3, 1.0]},
    {"name": "GaussNoise", "p": 0.2, "std_range": [0.03, 0.1]},
)


class ClassicSpecError(ValueError):
    """A transform entry that cannot be built; the message names the entry."""


def _albumentations():
    import albumentations

    return albumentations


def build_transform(spec: dict[str, Any], *, where: str = "transform"):
    """One albumentations transform from {name, p, **arguments}, strictly checked."""
    A = _albumentations()
    spec = dict(spec)
    name = spec.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ClassicSpecError(f"{where}: needs a 'name' (an albumentations transform, e.g. RandomFog)")
    cls = getattr(A, name, None)
    if not isinstance(cls, type) or not issubclass(cls, A.ImageOnlyTransform):
        raise ClassicSpecError(f"{where}: {name!r} is not an albumentations image transform (e.g. RandomFog, RandomSnow, GaussianBlur)")
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    try:
        return cls(**args, strict=True)
    except Exception as exc:  # albumentations raises ValueError or pydantic's ValidationError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClassicSpecError(f"{where}: {name}: {first}") from None


def build_pipeline(specs: list[dict[str, Any]], *, seed: int = 0):
    """An albumentations Compose of the given transforms, seeded (its own random stream)."""
    A = _albumentations()
    return A.Compose([build_transform(s, where=f"classic.transforms[{i}]") for i, s in enumerate(specs)], seed=seed)


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
