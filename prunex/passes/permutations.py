"""Channel permutations as index tensors: the few facts every pass that moves channels needs."""

from __future__ import annotations

import torch


def is_identity(order: torch.Tensor) -> bool:
    """order[i] = i for every i."""
    return torch.equal(order, torch.arange(len(order), device=order.device))


def inverse_permutation(order: torch.Tensor) -> torch.Tensor:
    """inv[order[i]] = i."""
    inv = torch.empty_like(order)
    inv[order] = torch.arange(len(order), device=order.device)
    return inv
