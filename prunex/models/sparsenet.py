"""SparseNet for CIFAR (Zhu et al., "Sparsely Aggregated Convolutional Networks").

Three stages of N layers, each layer reading the sparse aggregation of earlier outputs at offsets c^0, c^1, …
(the stage input counted as output 0); the stage output is the same aggregation after the last layer.
Layers are BN-ReLU-conv3×3(k), or with bottleneck BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k); transitions are
BN-ReLU-conv1×1-AvgPool(2); the head is BN-ReLU-average pool-linear. N = (depth − 4)/3, halved with bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity
from prunex.models.family import Family, Reference, classes_of, keep
from prunex.models.registry import register_model
from prunex.nn.classifier import ClassifierHead
from prunex.nn.init import he_init_
from prunex.nn.sparse_aggregation import AGGREGATIONS, SparseAggregation, aggregated_channels

SPARSENET_PAPER = "Zhu et al., Sparsely Aggregated Convolutional Networks, ECCV 2018"


@dataclass(frozen=True)
class SparseNetPlan:
    stem: int
    layers_per_stage: int
    growth: tuple[int, int, int]
    stage_in: tuple[int, int, int]  # channels entering each stage
    stage_out: tuple[int, int, int]  # channels of each stage's aggregated output


def sparsenet_plan(
    depth: int,
    growth: int | tuple[int, ...],
    bottleneck: bool,
    compression: float,
    aggregation: str,
    base: int,
    stem_width: int | None,
    dense: bool = False,
) -> SparseNetPlan:
    """Channel counts of every stage.

    NOTE: the reference code's stem is ``growth`` wide (its README's counts assume 2× growth; pass
    ``stem_width``). Summation (ours) needs equal widths, so there the stem and transitions output the next
    stage's growth rate and ``compression`` is unused.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    rates = (growth,) * 3 if isinstance(growth, int) else tuple(growth)
    if len(rates) != 3 or min(rates) < 1:
        raise ValueError(f"growth must be one rate or three per-stage rates, got {growth}")
    n = layers_per_stage(depth, bottleneck)
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1], got {compression}")
    stem = stem_width or rates[0]
    if aggregation == "sum" and stem != rates[0]:
        raise ValueError("sum aggregation needs stem_width equal to the first growth rate")
    ins, outs, c = [], [], stem
    for s, k in enumerate(rates):
        ins.append(c)
        channels = [c]
        for _ in range(n):
            channels.append(k)
        out = aggregated_channels(channels, base, aggregation, dense)
        outs.append(out)
        if s < 2:
            c = rates[s + 1] if aggregation == "sum" else int(out * compression)
    return SparseNetPlan(stem, n, rates, tuple(ins), tuple(outs))


def layers_per_stage(depth: int, bottleneck: bool) -> int:
    """N = (depth − 4)/3, or (depth − 4)/6 with bottleneck layers.

    NOTE: the paper's SparseNet[⊕]-BC-1001 (Table 3) is not 6N + 4; the authors' code takes N = int((depth − 4)/6)
    = 166, which reproduces the table's 4.62M. An odd depth one above 6N + 4 (or 3N + 4) is read the same way, as
    ResNet-1001 is named; any other depth is refused.
    """
    per = 6 if bottleneck else 3
    n, rest = divmod(depth - 4, per)
    if n < 1 or rest not in (0, 1):
        raise ValueError(
            f"depth must be {per}N + 4 (or {per}N + 5, read as {per}N + 4) "
            f"{'with' if bottleneck else 'without'} bottleneck, got {depth}"
        )
    return n


class SparseLayer(nn.Module):
    """BN-ReLU-conv3×3(k), or BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k) with bottleneck."""

    def __init__(self, in_ch: int, growth: int, bottleneck: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(in_ch), nn.ReLU()]
        if bottleneck:
            layers += [nn.Conv2d(in_ch, 4 * growth, 1, bias=False), nn.BatchNorm2d(4 * growth), nn.ReLU()]
            in_ch = 4 * growth
        layers.append(nn.Conv2d(in_ch, growth, 3, padding=1, bias=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class SparseStage(nn.Module):
    """outputs = [x]; outputs.append(F_ℓ(⊗ sparse(outputs))) for each layer; returns ⊗ sparse(outputs)."""

    def __init__(self, in_ch: int, growth: int, num_layers: int, bottleneck: bool, aggregation: SparseAggregation):
        super().__init__()
        self.aggregate = aggregation
        layers, channels = [], [in_ch]
        for _ in range(num_layers):
            layers.append(
                SparseLayer(
                    aggregated_channels(channels, aggregation.base, aggregation.mode, aggregation.dense),
                    growth,
                    bottleneck,
                )
            )
            channels.append(growth)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        outputs = [x]
        for layer in self.layers:
            outputs.append(layer(self.aggregate(outputs)))
        return self.aggregate(outputs)


def transition(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(), nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.AvgPool2d(2))


class SparseNetCifar(nn.Module):
    """stem → (sparse stage → transition) × 2 → sparse stage → BN-ReLU → average pool → linear."""

    def __init__(
        self,
        plan: SparseNetPlan,
        *,
        bottleneck: bool,
        aggregation: str,
        base: int,
        num_classes: int,
        in_chans: int,
        dense: bool = False,
    ):
        super().__init__()
        agg = SparseAggregation(base, aggregation, dense)
        self.stem = nn.Conv2d(in_chans, plan.stem, 3, padding=1, bias=False)
        body: list[nn.Module] = []
        for s in range(3):
            body.append(SparseStage(plan.stage_in[s], plan.growth[s], plan.layers_per_stage, bottleneck, agg))
            if s < 2:
                body.append(transition(plan.stage_out[s], plan.stage_in[s + 1]))
        self.body = nn.Sequential(*body)
        self.head = ClassifierHead(plan.stage_out[2], num_classes, norm=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


def sparsenet_cifar_complexity(
    *,
    depth,
    growth,
    bottleneck,
    compression,
    aggregation,
    base,
    stem_width,
    num_classes,
    in_chans,
    dense=False,
    image_size=32,
) -> Complexity:
    compression = _resolve_compression(bottleneck, compression)
    plan = sparsenet_plan(depth, growth, bottleneck, compression, aggregation, base, stem_width, dense)
    cx = cxm.conv2d(Complexity(image_size, image_size), in_chans, plan.stem, 3)
    for s in range(3):
        cx = sparse_stage_complexity(
            cx, plan.stage_in[s], plan.growth[s], plan.layers_per_stage, bottleneck, base, aggregation, dense
        )
        if s < 2:
            cx = transition_complexity(cx, plan.stage_out[s], plan.stage_in[s + 1])
    cx = cxm.global_pool(cxm.batchnorm2d(cx, plan.stage_out[2]))
    return cxm.linear(cx, plan.stage_out[2], num_classes)


def sparse_stage_complexity(
    cx: Complexity,
    c_in: int,
    growth: int,
    num_layers: int,
    bottleneck: bool,
    base: int,
    mode: str = "concat",
    dense: bool = False,
) -> Complexity:
    """Counts of a :class:`SparseStage`: each layer's BN on its aggregated input, its (bottleneck and) 3×3 conv."""
    channels = [c_in]
    for _ in range(num_layers):
        c = aggregated_channels(channels, base, mode, dense)
        cx = cxm.batchnorm2d(cx, c)
        if bottleneck:
            cx = cxm.batchnorm2d(cxm.conv2d(cx, c, 4 * growth, 1), 4 * growth)
            c = 4 * growth
        cx = cxm.conv2d(cx, c, growth, 3)
        channels.append(growth)
    return cx


def transition_complexity(cx: Complexity, c_in: int, c_out: int) -> Complexity:
    """Counts of :func:`transition`: BN, 1×1 conv, average pool 2."""
    return cxm.pool(cxm.conv2d(cxm.batchnorm2d(cx, c_in), c_in, c_out, 1), 2, 2)


def _resolve_compression(bottleneck: bool, compression: float | None) -> float:
    """DenseNet-BC convention: compression 0.5 with bottleneck layers, 1 without."""
    if compression is None:
        return 0.5 if bottleneck else 1.0
    return compression


def _densenet_of_same_shape(kwargs: dict[str, Any]) -> Reference | None:
    """Table 2: the DenseNet "exactly the same as" the SparseNet but aggregating every earlier output (same depth,
    growth, bottleneck, compression and stem width); none for summation, whose dense analogue is no DenseNet."""
    if kwargs.get("aggregation", "concat") != "concat":
        return None
    growth = kwargs.get("growth", 24)
    stem = kwargs.get("stem_width") or (growth if isinstance(growth, int) else growth[0])
    shape = keep(kwargs, "depth", "growth", "bottleneck", "compression")
    return Reference("densenet_cifar", {**shape, "stem_width": stem, **classes_of(kwargs)})


@register_model(
    paper=SPARSENET_PAPER,
    complexity=sparsenet_cifar_complexity,
    family=Family.SPARSENET,
    reference=_densenet_of_same_shape,
)
def sparsenet_cifar(
    *,
    depth: int = 100,
    growth: int | tuple[int, ...] = 24,
    bottleneck: bool = False,
    compression: float | None = None,
    aggregation: str = "concat",
    base: int = 2,
    stem_width: int | None = None,
    num_classes: int = 10,
    in_chans: int = 3,
) -> SparseNetCifar:
    """SparseNet (depth, growth k): layer ℓ reads ⊗(y_{ℓ−1}, y_{ℓ−c}, y_{ℓ−c²}, …)."""
    compression = _resolve_compression(bottleneck, compression)
    if isinstance(growth, list):
        growth = tuple(growth)
    plan = sparsenet_plan(depth, growth, bottleneck, compression, aggregation, base, stem_width)
    model = SparseNetCifar(
        plan, bottleneck=bottleneck, aggregation=aggregation, base=base, num_classes=num_classes, in_chans=in_chans
    )
    return he_init_(model)  # §4: He et al.'s initialisation
