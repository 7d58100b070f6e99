"""Model-wide operations on gates: find them, give them their own optimiser group, project, freeze."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from prunex.nn.branch_gates import BranchGates
from prunex.nn.dgconv import DGConv2d
from prunex.nn.gate_fusion import GateFusion, dgconv_complexity


def dgconv_modules(model: nn.Module) -> Iterator[tuple[str, DGConv2d]]:
    return ((n, m) for n, m in model.named_modules() if isinstance(m, DGConv2d))


def branch_gate_modules(model: nn.Module) -> Iterator[tuple[str, BranchGates]]:
    return ((n, m) for n, m in model.named_modules() if isinstance(m, BranchGates))


def gate_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The learnable gates (DGConv g̃, MaskConnect m̃): they train with their own learning rate and no decay."""
    params = [m.gate for _, m in dgconv_modules(model) if m.num_gates > 0]
    params += [m.weight for _, m in branch_gate_modules(model) if m.weight is not None]
    return params


@torch.no_grad()
def project_gates_(model: nn.Module) -> None:
    """Clip every learned MaskConnect mask to [0, 1]: one batched projection per mask shape, with no value read
    back to the host. (Masks are also projected lazily whenever they are next read: see
    :meth:`BranchGates.project_if_stale_`.)"""
    GateFusion(model).project_()


@torch.no_grad()
def freeze_gates(model: nn.Module) -> nn.Module:
    """Make all connectivity constant: MaskConnect masks at top-K, DGConv gates no longer trainable."""
    for _, m in branch_gate_modules(model):
        m.freeze()
    for _, m in dgconv_modules(model):
        m.gate.requires_grad_(False)
    return model


def total_complexity(model: nn.Module) -> Tensor:
    """ζ = Σ_ℓ ζ_ℓ over the model's DGConv layers (the paper's resource term, differentiable in the gates)."""
    return dgconv_complexity([m for _, m in dgconv_modules(model)])
