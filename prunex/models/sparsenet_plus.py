"""SparseNet[+] for CIFAR (Zhu et al., Table 3 left): the pre-activation bottleneck ResNet with sparse aggregation.

A pre-activation ResNet stage computes x_ℓ = x_{ℓ−1} + f_ℓ(x_{ℓ−1}) = Σ_{i<ℓ} y_i: every layer reads the sum of all
earlier outputs (dense aggregation by summation). SparseNet[+] keeps every layer and width and sums only the outputs
at offsets c^0, c^1, …: layer ℓ reads Σ_k y_{ℓ−c^k}. A stage's first block changes width (and resolution), so the
stage pre-activates its input once, h = ReLU(BN(x)), and starts its list of outputs with y_0 = P(h) (the 1×1
projection of ResNet's first block) and y_1 = f_1(h); the stage output is the sparse sum after its last layer.

Depth 9n + 2: a 3×3 stem of 16, three stages of n bottleneck blocks with outputs 64, 128, 256, BN-ReLU, average
pool, linear; the parameters are ResNet's exactly (summation adds none). With n = 1 the network is the
pre-activation ResNet itself.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity
from prunex.models.family import Family, Reference, classes_of
from prunex.models.multiresnet import STEM_WIDTH, multiresnet_stages, preact_blocks_and_head_complexity
from prunex.models.registry import register_model
from prunex.models.sparsenet import SPARSENET_PAPER
from prunex.nn.classifier import ClassifierHead
from prunex.nn.init import he_init_
from prunex.nn.multi_residual import PreActFunction
from prunex.nn.sparse_aggregation import SparseAggregation


class SparseResidualStage(nn.Module):
    """outputs = [P(h), f_1(h)] with h = ReLU(BN(x)); outputs.append(f_ℓ(Σ sparse(outputs))) for ℓ ≥ 2; returns
    Σ sparse(outputs)."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, stride: int, aggregate: SparseAggregation) -> None:
        super().__init__()
        self.aggregate = aggregate
        self.preact = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU())
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
        first = PreActFunction(in_ch, out_ch, stride=stride, kind="bottleneck", preact=False)
        rest = (PreActFunction(out_ch, out_ch, kind="bottleneck") for _ in range(num_blocks - 1))
        self.functions = nn.ModuleList([first, *rest])

    def forward(self, x: Tensor) -> Tensor:
        h = self.preact(x)
        outputs = [self.shortcut(h), self.functions[0](h)]
        for f in self.functions[1:]:
            outputs.append(f(self.aggregate(outputs)))
        return self.aggregate(outputs)


class SparseNetPlusCifar(nn.Module):
    """stem → three sparse residual stages → BN-ReLU → average pool → linear."""

    def __init__(self, *, depth: int, base: int, num_classes: int, in_chans: int) -> None:
        super().__init__()
        specs = multiresnet_stages(depth, "bottleneck", 1, None)
        n = len(specs) // 3
        aggregate = SparseAggregation(base, "sum")
        self.stem = nn.Conv2d(in_chans, STEM_WIDTH, 3, padding=1, bias=False)
        self.stages = nn.Sequential(
            *(SparseResidualStage(*specs[s * n][:2], n, specs[s * n][2], aggregate) for s in range(3))
        )
        width = specs[-1][1]
        self.head = ClassifierHead(width, num_classes, norm=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


def sparsenet_plus_cifar_complexity(*, depth, base, num_classes, in_chans, image_size: int = 32) -> Complexity:
    """The pre-activation bottleneck ResNet's counts: sparse summation changes no width."""
    cx = cxm.conv2d(Complexity(image_size, image_size), in_chans, STEM_WIDTH, 3)
    return preact_blocks_and_head_complexity(
        cx, multiresnet_stages(depth, "bottleneck", 1, None), "bottleneck", 1, num_classes
    )


def _preactivation_resnet(kwargs: dict[str, Any]) -> Reference:
    """Table 3: the pre-activation ResNet of the same depth (striding in its 3×3 convs, as these layers do)."""
    depth = kwargs.get("depth", 56)
    layout = {"depth": depth, "k": 1, "block": "bottleneck", "stride_first": False}
    return Reference("multiresnet_cifar", {**layout, **classes_of(kwargs)})


@register_model(
    paper=SPARSENET_PAPER,
    complexity=sparsenet_plus_cifar_complexity,
    family=Family.SPARSENET,
    reference=_preactivation_resnet,
)
def sparsenet_plus_cifar(
    *, depth: int = 56, base: int = 2, num_classes: int = 10, in_chans: int = 3
) -> SparseNetPlusCifar:
    """SparseNet[+] (depth 9n + 2): the pre-activation bottleneck ResNet whose layers sum the outputs at offsets c^k."""
    model = SparseNetPlusCifar(depth=depth, base=base, num_classes=num_classes, in_chans=in_chans)
    return he_init_(model)  # §4: He et al.'s initialisation
