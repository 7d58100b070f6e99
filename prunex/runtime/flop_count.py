"""Floating-point operations of one forward pass, counted by PyTorch's own ``FlopCounterMode`` (a multiply-add is
two: convolutions, matrix products, attention; element-wise work is not counted)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def forward_flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of ``module`` on one sample of ``input_shape`` (C, H, W), counted on a float32 CPU copy."""
    m = copy.deepcopy(module).cpu().float().eval()
    x = torch.zeros(1, *input_shape)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(x)
    return int(counter.get_total_flops())
