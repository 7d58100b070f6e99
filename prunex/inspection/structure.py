"""What a gated model learned, as plain data: MaskConnect connectivity, DGConv groups, SparseNet links and feature
reuse; and, from a run's metrics, DGConv's gates over training."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from prunex.models.maskconnect import MaskConnectNet
from prunex.models.sparsenet import SparseNetCifar, SparseStage
from prunex.nn.dgconv import DGConv2d
from prunex.nn.multi_residual import MultiResidualBlock


@dataclass
class Connectivity:
    """Modules of C blocks; ``masks[i]`` (C×C, row j = the inputs of block j) for modules 1…L−1."""

    cardinality: int
    fan_in: int
    masks: list[torch.Tensor]
    active: list[list[bool]]
    block_params: list[int]  # weights of one block, per module

    @property
    def modules(self) -> int:
        return len(self.active)

    def edges(self) -> list[tuple[int, int, int]]:
        """(module i, source block k in module i−1, block j) for every active connection."""
        return [(i + 1, k, j) for i, m in enumerate(self.masks) for j, k in m.nonzero().tolist()]


@dataclass
class GroupedLayer:
    name: str
    in_channels: int
    out_channels: int
    gates: list[int]
    groups: int
    dense_params: int
    grouped_params: int


@dataclass
class SparseStageLinks:
    layers: int
    base: int
    mode: str
    links: list[list[int]] = field(default_factory=list)  # per layer ℓ = 1…N: the outputs it reads (0 = input)


@dataclass
class FeatureReuse:
    """One concatenating stage: ``weights[ℓ − 1][j]`` is the mean |w| of layer ℓ's first convolution over the input
    channels that come from output j (0: the stage input), None where layer ℓ does not read output j (SparseNet
    Fig. 3, after DenseNet Fig. 5)."""

    stage: int
    weights: list[list[float | None]]


@dataclass
class GateDynamics:
    """Groups per DGConv layer at the end of each epoch (``groups[epoch][layer]``), and ζ / o where logged."""

    epochs: list[int]
    groups: list[list[int]]
    zeta_over_budget: list[float] | None


def connectivity(model: nn.Module) -> Connectivity | None:
    if not isinstance(model, MaskConnectNet):
        return None
    masks = [m.gates.binary_mask().detach().cpu() for m in model.stages[1:]]
    first = model.stages[0]
    return Connectivity(
        cardinality=len(first.blocks),
        fan_in=model.stages[1].gates.fan_in if len(model.stages) > 1 else len(first.blocks),
        masks=masks,
        active=model.active_blocks(),
        block_params=[sum(p.numel() for p in m.blocks[0].parameters()) for m in model.stages],
    )


def grouped_layers(model: nn.Module) -> list[GroupedLayer]:
    out = []
    for name, m in model.named_modules():
        if isinstance(m, DGConv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            dense = m.in_channels * m.out_channels * k
            out.append(
                GroupedLayer(
                    name, m.in_channels, m.out_channels, m.gate_list(), m.num_groups, dense, dense // m.num_groups
                )
            )
    return out


def sparse_links(model: nn.Module) -> list[SparseStageLinks]:
    if not isinstance(model, SparseNetCifar):
        return []
    stages = []
    for stage in model.body:
        if isinstance(stage, SparseStage):
            agg = stage.aggregate
            n = len(stage.layers)
            links = [agg.picks(ell) for ell in range(1, n + 2)]  # n layers + the stage output
            stages.append(SparseStageLinks(n, agg.base, agg.mode, links))
    return stages


def multi_residual_blocks(model: nn.Module) -> list[int]:
    """Residual functions per multi-residual block."""
    return [len(m.functions) for m in model.modules() if isinstance(m, MultiResidualBlock)]


def feature_reuse(model: nn.Module) -> list[FeatureReuse]:
    """Every concatenating sparse stage's :class:`FeatureReuse` (summing stages mix their sources: none)."""
    out = []
    stages = [m for m in model.modules() if isinstance(m, SparseStage) and m.aggregate.mode == "concat"]
    for s, stage in enumerate(stages):
        first_conv = next(m for m in stage.layers[0].modules() if isinstance(m, nn.Conv2d))
        widths = [first_conv.in_channels]  # output 0, the stage input: all that layer 1 reads
        rows: list[list[float | None]] = []
        for ell, layer in enumerate(stage.layers, start=1):
            w = next(m for m in layer.modules() if isinstance(m, nn.Conv2d)).weight.detach().abs()
            row: list[float | None] = [None] * ell
            start = 0
            for j in stage.aggregate.picks(ell):  # the concatenation's order
                row[j] = float(w[:, start : start + widths[j]].mean())
                start += widths[j]
            rows.append(row)
            widths.append(layer.body[-1].out_channels)  # the growth k this layer adds
        out.append(FeatureReuse(s, rows))
    return out


def gate_dynamics(history: list[dict]) -> GateDynamics | None:
    """DGConv's groups per layer over a run's epochs (from ``metrics.jsonl`` / the checkpoint's history)."""
    logged = [m for m in history if m.get("groups")]
    if not logged:
        return None
    ratio = [m["zeta"] / m["budget_o"] for m in logged] if all("budget_o" in m for m in logged) else None
    return GateDynamics([int(m["epoch"]) for m in logged], [list(m["groups"]) for m in logged], ratio)
