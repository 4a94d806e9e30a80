"""Downstream classifiers: the networks whose target-domain accuracy the pipeline measures."""
from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """A LeNet-sized CNN for small images: two conv blocks, global pooling, a linear head.

    (B, C, H, W) -> (B, num_classes) logits. `features()` gives the pooled (B, 2*width) embedding,
    which the evaluate stage reuses as the feature extractor for FID/KID.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.3):
        super().__init__()
        if in_channels < 1 or num_classes < 2 or width < 1 or not 0 <= dropout < 1:
            raise ValueError(
                f"SmallCNN needs in_channels >= 1, num_classes >= 2, width >= 1, 0 <= dropout < 1, got "
                f"in_channels={in_channels}, num_classes={num_classes}, width={width}, dropout={dropout}"
            )
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(True),
            nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(True),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 2w)
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * w, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


CLASSIFIERS = {"small_cnn": SmallCNN}


def build_classifier(name: str, **kwargs) -> nn.Module:
    if name not in CLASSIFIERS:
        raise ValueError(f"Unknown classifier {name!r}. Valid: {', '.join(sorted(CLASSIFIERS))}")
    return CLASSIFIERS[name](**kwargs)
