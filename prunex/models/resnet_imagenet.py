"""The plain ResNet / ResNeXt baselines of DGConv's Table 4 ("2× ResNet101"), after Xie et al.'s Table 4: networks of
twice ResNet-101's multiply-adds grown in depth (ResNet-200, 1×64d), in width (ResNet-101 1×100d) or in cardinality
(ResNeXt-101 64×4d and 2×64d). G-ResNeXt-101 at b = 2 is compared with them.

torchvision's ResNet (post-activation bottlenecks, the stride in the 3×3 conv), built at any depth of
:data:`LAYOUTS`, groups and width per group; at depth 50 / 101 / 152 it is torchvision's resnet / resnext.

NOTE: He et al.'s ResNet-200 is the pre-activation network; DGConv re-implements every row of its Table 4 "following
[Xie et al.]", so it is built here in the same post-activation layout as the other rows (the same convolutions:
only the BN placement, 192 BN channels fewer than the pre-activation form's, differs).
"""

from __future__ import annotations

from torchvision.models import resnet as tv_resnet

from prunex.models.complexity import Complexity
from prunex.models.family import Family
from prunex.models.g_resnext import DGCONV_PAPER, resnext_imagenet_complexity
from prunex.models.multiresnet import IMAGENET_LAYOUTS
from prunex.models.registry import register_model

# He et al.'s bottleneck ImageNet ResNets: blocks per stage
LAYOUTS = {depth: blocks for depth, (kind, blocks) in IMAGENET_LAYOUTS.items() if kind == "bottleneck"}


def _layout(depth: int) -> tuple[int, ...]:
    if depth not in LAYOUTS:
        raise ValueError(f"depth must be one of {sorted(LAYOUTS)} (He et al.'s ImageNet ResNets), got {depth}")
    return LAYOUTS[depth]


def resnet_imagenet_complexity(*, depth, groups, width_per_group, num_classes, image_size: int = 224) -> Complexity:
    return resnext_imagenet_complexity(
        _layout(depth), groups, width_per_group, num_classes=num_classes, dgconv=False, image_size=image_size
    )


@register_model(paper=DGCONV_PAPER, complexity=resnet_imagenet_complexity, image_size=224, family=Family.DGCONV)
def resnet_imagenet(
    *, depth: int = 101, groups: int = 1, width_per_group: int = 64, num_classes: int = 1000
) -> tv_resnet.ResNet:
    """ResNet-{depth} {groups}×{width_per_group}d (DGConv Table 4: depth 200; 101 at 1×100d, 64×4d, 2×64d)."""
    if groups < 1 or width_per_group < 1:
        raise ValueError(f"groups and width_per_group must be >= 1, got {groups} and {width_per_group}")
    blocks = list(_layout(depth))
    return tv_resnet.ResNet(
        tv_resnet.Bottleneck, blocks, num_classes=num_classes, groups=groups, width_per_group=width_per_group
    )
