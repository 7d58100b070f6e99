"""The ImageNet stem the papers' ImageNet networks share (He et al.): conv7×7/2 → BN → ReLU → max-pool 3×3/2."""

from __future__ import annotations

from torch import nn

from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity


def imagenet_stem(in_chans: int, width: int = 64) -> nn.Sequential:
    """224² → 56²: conv7×7/2 (``width`` filters) → BN → ReLU → max-pool 3×3/2."""
    return nn.Sequential(
        nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


def imagenet_stem_complexity(image_size: int, in_chans: int, width: int = 64) -> Complexity:
    cx = cxm.batchnorm2d(cxm.conv2d(Complexity(image_size, image_size), in_chans, width, 7, stride=2), width)
    return cxm.pool(cx, 3, 2, padding=1)
