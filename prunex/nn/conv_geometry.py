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


def is_plain_conv(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` computes exactly ``nn.Conv2d``'s convolution: its class overrides neither ``forward`` nor
    ``_conv_forward`` (timm's ``Conv2dSame`` pads from the input size and ``StdConv2d`` standardises its weight in
    their own forwards; timm's ``create_conv2d`` gives plain convs where the padding is static)."""
    cls = type(conv)
    return cls.forward is nn.Conv2d.forward and cls._conv_forward is nn.Conv2d._conv_forward
