"""What a gated model learned, as plain data: MaskConnect connectivity, DGConv groups, SparseNet links."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from prunex.models.maskconnect import MaskConnectNet
from prunex.models.sparsenet import SparseNetCifar, SparseStage
from prunex.nn.dgconv import DGConv2d
from prunex.nn.multi_residual import MultiResidualBlock
from prunex.nn.sparse_aggregation import exponential_offsets


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
            links = [exponential_offsets(ell, agg.base) for ell in range(1, n + 2)]  # n layers + the stage output
            stages.append(SparseStageLinks(n, agg.base, agg.mode, links))
    return stages


def multi_residual_blocks(model: nn.Module) -> list[int]:
    """Residual functions per multi-residual block."""
    return [len(m.functions) for m in model.modules() if isinstance(m, MultiResidualBlock)]
