"""Gated layers of the four papers: DGConv, MaskConnect branch gates, multi-residual blocks, sparse aggregation."""

from prunex.nn.branch_gates import (
    BranchGates,
    Connectivity,
    aggregate_branches,
    aggregate_branches_stacked,
    project_masks_,
    sample_k_of_c,
    sample_straight_through,
    topk_mask,
)
from prunex.nn.dgconv import DGConv2d, binarize_gates, group_order, relation_matrix
from prunex.nn.fused_gates import fuse_gates, gate_fusion_of, unfuse_gates
from prunex.nn.gate_fusion import GateFusion, dgconv_complexity
from prunex.nn.gates import (
    branch_gate_modules,
    dgconv_modules,
    freeze_gates,
    gate_parameters,
    project_gates_,
    total_complexity,
)
from prunex.nn.multi_residual import MultiResidualBlock, PreActFunction
from prunex.nn.residual import BottleneckFunction, Projection, shortcut
from prunex.nn.sparse_aggregation import SparseAggregation, exponential_offsets

__all__ = [
    "BottleneckFunction",
    "BranchGates",
    "Connectivity",
    "DGConv2d",
    "GateFusion",
    "MultiResidualBlock",
    "PreActFunction",
    "Projection",
    "SparseAggregation",
    "aggregate_branches",
    "aggregate_branches_stacked",
    "binarize_gates",
    "dgconv_complexity",
    "branch_gate_modules",
    "dgconv_modules",
    "exponential_offsets",
    "freeze_gates",
    "fuse_gates",
    "gate_fusion_of",
    "gate_parameters",
    "group_order",
    "project_gates_",
    "project_masks_",
    "relation_matrix",
    "sample_k_of_c",
    "sample_straight_through",
    "shortcut",
    "topk_mask",
    "unfuse_gates",
    "total_complexity",
]
