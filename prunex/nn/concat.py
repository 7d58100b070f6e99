"""Concatenation along dim 0 whose backward is one split (``torch.cat``'s backward takes one slice per input)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class _Concat(torch.autograd.Function):
    @staticmethod
    def forward(ctx, *parts: Tensor) -> Tensor:
        ctx.sizes = [p.shape[0] for p in parts]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad.split(ctx.sizes)


def concat(parts: Sequence[Tensor]) -> Tensor:
    """``torch.cat(parts)`` (dim 0), differentiable with a single split in the backward pass."""
    parts = list(parts)
    return parts[0] if len(parts) == 1 else _Concat.apply(*parts)
