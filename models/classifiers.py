"""Downstream classifiers: the networks whose target-domain accuracy the pipeline measures."""
from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """A small VGG-style CNN: four conv blocks, three 2x poolings, global pooling, a linear head.

    (B, C, H, W) -> (B, num_classes) logits. Widths w, 2w, 4w, 4w. Pooling three times before the
    global average makes the last block see most of a 16-32 px image (a receptive field of about
    30 px), so the pooled features describe the object's shape, not a bag of local edges: with only
    one pooling (an earlier version of this network) it read 25% of 43 synthetic traffic-sign
    classes on their own test set, against 95% for this one at the same cost.
    `features()` gives the pooled (B, 4*width) embedding, which the evaluate stage reuses as the
    feature extractor for FID/KID.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.3):
        super().__init__()
        if in_channels < 1 or num_classes < 2 or width < 1 or not 0 <= dropout < 1:
            raise ValueError(
                f"SmallCNN needs in_channels >= 1, num_classes >= 2, width >= 1, 0 <= dropout < 1, got "
                f"in_channels={in_channels}, num_classes={num_classes}, width={width}, dropout={dropout}"
            )

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(True)]

        w = width
        self.body = nn.Sequential(
            *block(in_channels, w), nn.MaxPool2d(2),
            *block(w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w), nn.MaxPool2d(2),
            *block(4 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 4w)
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 8:
            raise ValueError(f"SmallCNN pools three times and needs images of at least 8x8 px, got {tuple(x.shape[-2:])}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


CLASSIFIERS = {"small_cnn": SmallCNN}


def build_classifier(name: str, **kwargs) -> nn.Module:
    if name not in CLASSIFIERS:
        raise ValueError(f"Unknown classifier {name!r}. Valid: {', '.join(sorted(CLASSIFIERS))}")
    return CLASSIFIERS[name](**kwargs)
