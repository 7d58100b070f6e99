"""DenseNet for CIFAR (Huang et al.), the baseline SparseNet's Table 2 compares each SparseNet with: the same
network in which every layer concatenates *all* earlier outputs of its stage instead of those at offsets c^k.

Built as :class:`~prunex.models.sparsenet.SparseNetCifar` with dense aggregation, so each SparseNet and its DenseNet
differ in nothing else: layers BN-ReLU-conv3×3(k) (BC: BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k)), transitions
BN-ReLU-conv1×1-AvgPool(2) compressing by ½ in BC networks, head BN-ReLU-pool-linear, N = (depth − 4)/3 layers per
stage (halved in BC networks). The stem is 2k wide, the convention of Table 2's counts.
"""

from __future__ import annotations

from prunex.models.complexity import Complexity
from prunex.models.family import Family
from prunex.models.registry import register_model
from prunex.models.sparsenet import (
    SPARSENET_PAPER,
    SparseNetCifar,
    _resolve_compression,
    sparsenet_cifar_complexity,
    sparsenet_plan,
)
from prunex.nn.init import he_init_


def _stem(growth: int | tuple[int, ...], stem_width: int | None) -> int:
    """DenseNet-BC's stem of 2k channels (k: the first stage's growth) unless given."""
    return stem_width or 2 * (growth if isinstance(growth, int) else growth[0])


def densenet_cifar_complexity(
    *, depth, growth, bottleneck, compression, stem_width, num_classes, in_chans, image_size=32
) -> Complexity:
    return sparsenet_cifar_complexity(
        depth=depth,
        growth=growth,
        bottleneck=bottleneck,
        compression=compression,
        aggregation="concat",
        base=2,
        stem_width=_stem(growth, stem_width),
        num_classes=num_classes,
        in_chans=in_chans,
        dense=True,
        image_size=image_size,
    )


@register_model(paper=SPARSENET_PAPER, complexity=densenet_cifar_complexity, family=Family.SPARSENET)
def densenet_cifar(
    *,
    depth: int = 40,
    growth: int | tuple[int, ...] = 12,
    bottleneck: bool = False,
    compression: float | None = None,
    stem_width: int | None = None,
    num_classes: int = 10,
    in_chans: int = 3,
) -> SparseNetCifar:
    """DenseNet (depth, growth k): layer ℓ concatenates every earlier output of its stage (SparseNet's baseline)."""
    compression = _resolve_compression(bottleneck, compression)
    growth = tuple(growth) if isinstance(growth, list) else growth
    stem = _stem(growth, stem_width)
    plan = sparsenet_plan(depth, growth, bottleneck, compression, "concat", 2, stem, dense=True)
    options = dict(bottleneck=bottleneck, aggregation="concat", base=2, num_classes=num_classes, in_chans=in_chans)
    model = SparseNetCifar(plan, **options, dense=True)
    return he_init_(model)  # as every network of the papers
