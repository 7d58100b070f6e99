"""SparseNet[⊕] for ImageNet (Zhu et al., Table 4): DenseNet-BC's ImageNet layout with sparse aggregation.

conv7×7/2 → BN-ReLU → max-pool 3×3/2 → four sparse stages of bottleneck layers (BN-ReLU-conv1×1(4k)-BN-ReLU-
conv3×3(k)), each but the last followed by a compressing transition (BN-ReLU-conv1×1 to half the channels, average
pool 2) → BN-ReLU → average pool → linear. Layers per stage as DenseNet-121 / 169 / 201 / 264.

NOTE: Table 4's parameter counts are this layout's plus exactly 8·C_last·1000 in all four rows (C_last: the final
channel count) — a classifier that reads the final 7×7 map average-pooled to 3×3 (9·C_last features) instead of
1×1. The paper does not describe its head; ``head_pool=3`` builds that reading, and with it the four counts round
to the printed digits (+0.08, −0.02, +0.03, −0.02 %) while the FLOPs grow by 0.003–0.005 G, under the printed
digits' rounding. The default stays DenseNet's global average pool.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity
from prunex.models.family import TORCHVISION, Family, Reference, keep
from prunex.models.registry import register_model
from prunex.models.sparsenet import (
    SPARSENET_PAPER,
    SparseStage,
    sparse_stage_complexity,
    transition,
    transition_complexity,
)
from prunex.models.stems import imagenet_stem, imagenet_stem_complexity
from prunex.nn.classifier import ClassifierHead
from prunex.nn.init import he_init_
from prunex.nn.sparse_aggregation import SparseAggregation, aggregated_channels

LAYOUTS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32), 264: (6, 12, 64, 48)}
COMPRESSION = 0.5


def stage_channels(depth: int, growth: int, stem_width: int | None, base: int) -> list[tuple[int, int]]:
    """(channels in, aggregated channels out) of every stage.

    NOTE: the stem is ``growth`` wide by default (DenseNet uses 2k). With a k-wide stem the four networks of Table 4
    come to 3.44 / 3.72 / 4.11 / 9.15 GFLOPs against the printed 3.46 / 3.74 / 4.13 / 9.19 (a 2k stem: 3.64 /
    3.92 / 4.30 / 9.50). The printed parameter counts are 18–39 % above this layout's with either stem (an
    independent reimplementation with the 2k stem also counts 3.25M for SparseNet-121); the paper does not say
    what holds the difference, which scales with k and the last stage's length at no visible FLOP cost.
    """
    if depth not in LAYOUTS:
        raise ValueError(f"depth must be one of {sorted(LAYOUTS)} (DenseNet's ImageNet layouts), got {depth}")
    if growth < 1:
        raise ValueError(f"growth must be >= 1, got {growth}")
    stages, c = [], stem_width or growth
    for n in LAYOUTS[depth]:
        out = aggregated_channels([c] + [growth] * n, base)
        stages.append((c, out))
        c = int(out * COMPRESSION)
    return stages


class SparseNetImageNet(nn.Module):
    """stem → (sparse stage → transition) × 3 → sparse stage → BN-ReLU → average pool → linear."""

    def __init__(
        self,
        *,
        depth: int,
        growth: int,
        stem_width: int | None,
        base: int,
        num_classes: int,
        in_chans: int,
        head_pool: int = 1,
    ):
        super().__init__()
        stages = stage_channels(depth, growth, stem_width, base)
        stem = stages[0][0]
        self.stem = imagenet_stem(in_chans, stem)
        aggregate = SparseAggregation(base, "concat")
        body: list[nn.Module] = []
        for s, (c_in, out) in enumerate(stages):
            body.append(SparseStage(c_in, growth, LAYOUTS[depth][s], True, aggregate))
            if s < len(stages) - 1:
                body.append(transition(out, stages[s + 1][0]))
        self.body = nn.Sequential(*body)
        width = stages[-1][1]
        self.head = ClassifierHead(width, num_classes, norm=True, pool=head_pool)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


def sparsenet_imagenet_complexity(
    *, depth, growth, stem_width, base, num_classes, in_chans, head_pool: int = 1, image_size: int = 224
) -> Complexity:
    stages = stage_channels(depth, growth, stem_width, base)
    stem = stages[0][0]
    cx = imagenet_stem_complexity(image_size, in_chans, stem)
    for s, (c_in, out) in enumerate(stages):
        cx = sparse_stage_complexity(cx, c_in, growth, LAYOUTS[depth][s], True, base)
        if s < len(stages) - 1:
            cx = transition_complexity(cx, out, stages[s + 1][0])
    width = stages[-1][1]
    return cxm.linear(cxm.global_pool(cxm.batchnorm2d(cx, width)), width * head_pool * head_pool, num_classes)


def _densenet(kwargs: dict[str, Any]) -> Reference | None:
    """Table 4: torchvision's DenseNet-{depth}-32 (the depths it builds)."""
    depth = kwargs.get("depth", 121)
    return Reference(f"{TORCHVISION}densenet{depth}", keep(kwargs, "num_classes")) if depth in (121, 169, 201) else None


@register_model(
    paper=SPARSENET_PAPER,
    complexity=sparsenet_imagenet_complexity,
    image_size=224,
    family=Family.SPARSENET,
    reference=_densenet,
)
def sparsenet_imagenet(
    *,
    depth: int = 121,
    growth: int = 32,
    stem_width: int | None = None,
    base: int = 2,
    num_classes: int = 1000,
    in_chans: int = 3,
    head_pool: int = 1,
) -> SparseNetImageNet:
    """SparseNet[⊕]-BC for ImageNet (Table 4: 121 / 169 / 201 with k = 32, 201 with k = 48; ``head_pool=3``: the
    classifier over a 3×3-pooled final map that Table 4's counts imply)."""
    model = SparseNetImageNet(
        depth=depth,
        growth=growth,
        stem_width=stem_width,
        base=base,
        num_classes=num_classes,
        in_chans=in_chans,
        head_pool=head_pool,
    )
    return he_init_(model)  # §4: He et al.'s initialisation
