"""DenseNet-BC for ImageNet (Huang et al.), the baseline of SparseNet's Table 4: the network of
:mod:`~prunex.models.sparsenet_imagenet` with every layer reading all earlier outputs of its stage.

conv7×7/2 (2k) → BN-ReLU → max-pool 3×3/2 → four dense blocks of BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k) layers, each
but the last followed by a transition (BN-ReLU-conv1×1 to half the channels, average pool 2) → BN-ReLU → average
pool → linear. With the weights' input channels reordered (prunex concatenates the most recent output first,
torchvision the stage input first) it computes exactly what torchvision's ``densenet121/169/201`` compute.
"""

from __future__ import annotations

from typing import Any

from prunex.models.complexity import Complexity
from prunex.models.family import Family
from prunex.models.registry import register_model
from prunex.models.sparsenet import SPARSENET_PAPER
from prunex.models.sparsenet_imagenet import SparseNetImageNet, imagenet_dense_blocks_complexity, layout_of
from prunex.nn.init import he_init_


def _shape(depth: int, growth: int, block_layers: tuple[int, ...] | list[int] | None) -> dict[str, Any]:
    """What makes the SparseNet layout DenseNet-{depth}-k: dense aggregation, a 2k stem, the depth's blocks."""
    if block_layers is not None and len(block_layers) != 4:
        raise ValueError(f"block_layers must give the layers of the four dense blocks, got {block_layers}")
    layers = layout_of(depth) if block_layers is None else tuple(block_layers)
    return {"layers": layers, "growth": growth, "stem_width": 2 * growth, "base": 2, "dense": True}


def densenet_imagenet_complexity(
    *, depth, growth, block_layers, num_classes, in_chans, image_size: int = 224
) -> Complexity:
    shape = _shape(depth, growth, block_layers)
    return imagenet_dense_blocks_complexity(**shape, num_classes=num_classes, in_chans=in_chans, image_size=image_size)


@register_model(paper=SPARSENET_PAPER, complexity=densenet_imagenet_complexity, image_size=224, family=Family.SPARSENET)
def densenet_imagenet(
    *,
    depth: int = 121,
    growth: int = 32,
    block_layers: tuple[int, ...] | None = None,
    num_classes: int = 1000,
    in_chans: int = 3,
) -> SparseNetImageNet:
    """DenseNet-BC-{depth}-k for ImageNet (121 / 169 / 201 / 264, Huang et al.'s layouts; ``block_layers``: the
    layers of the four dense blocks instead of the depth's)."""
    model = SparseNetImageNet(**_shape(depth, growth, block_layers), num_classes=num_classes, in_chans=in_chans)
    return he_init_(model)  # as every network of the papers
