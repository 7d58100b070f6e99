"""A convolution's geometry, to build another conv shaped like it (the one place that lists the fields)."""

from __future__ import annotations

from typing import Any

from torch import nn


def conv_geometry(conv: nn.Conv2d) -> dict[str, Any]:
    """Everything about ``conv`` but its channel counts, grouping and values: kernel, stride, padding, dilation,
    bias or not, padding mode, device and dtype (keyword arguments of ``nn.Conv2d``)."""
    return {
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "bias": conv.bias is not None,
        "padding_mode": conv.padding_mode,
        "device": conv.weight.device,
        "dtype": conv.weight.dtype,
    }


def conv_like(
    conv: nn.Conv2d, in_channels: int | None = None, out_channels: int | None = None, groups: int | None = None
) -> nn.Conv2d:
    """A fresh (randomly initialised) ``nn.Conv2d`` with ``conv``'s geometry; channel counts and groups default to
    ``conv``'s."""
    return nn.Conv2d(
        conv.in_channels if in_channels is None else in_channels,
        conv.out_channels if out_channels is None else out_channels,
        groups=conv.groups if groups is None else groups,
        **conv_geometry(conv),
    )
