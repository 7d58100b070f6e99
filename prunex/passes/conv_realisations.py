"""The exact realisations of a grouped conv: its learned G groups, any coarser G' dividing G (zero blocks), dense
(G' = 1), or G separate convs on channel slices (split)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from prunex.nn.conv_geometry import conv_like


@dataclass(frozen=True)
class ConvRealisation:
    """How a grouped conv runs: one conv with ``groups`` groups, or (``split``) ``groups`` separate convs."""

    groups: int
    split: bool = False

    @property
    def label(self) -> str:
        """``groups=8``, ``dense`` or ``split`` (cache and report spelling)."""
        return "split" if self.split else "dense" if self.groups == 1 else f"groups={self.groups}"

    @property
    def groups_after(self) -> int | str:
        """What the report's ``groups_after`` says: the group count, or ``"split"``."""
        return "split" if self.split else self.groups


def coarser_group_counts(conv: nn.Conv2d) -> list[int]:
    """Every G' that divides G (G' = 1 is the dense conv)."""
    g = conv.groups
    return [d for d in range(g, 0, -1) if g % d == 0]


def coarsen(conv: nn.Conv2d, groups: int) -> nn.Conv2d:
    """The same conv with ``groups`` (dividing conv.groups) groups: each coarse block holds f = G/G' fine blocks on
    its diagonal and zeros elsewhere."""
    g, f = conv.groups, conv.groups // groups
    so, si = conv.out_channels // g, conv.in_channels // g
    out = conv_like(conv, groups=groups)
    with torch.no_grad():
        out.weight.zero_()
        for i in range(g):
            col = (i % f) * si
            out.weight[i * so : (i + 1) * so, col : col + si] = conv.weight[i * so : (i + 1) * so]
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out.eval()


class SplitConv(nn.Module):
    """G separate convs on the G channel slices, concatenated (used to time the split realisation)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        g, so, si = conv.groups, conv.out_channels // conv.groups, conv.in_channels // conv.groups
        self.si = si
        self.parts = nn.ModuleList()
        for i in range(g):
            part = conv_like(conv, si, so, 1)
            with torch.no_grad():
                part.weight.copy_(conv.weight[i * so : (i + 1) * so])
                if conv.bias is not None:
                    part.bias.copy_(conv.bias[i * so : (i + 1) * so])
            self.parts.append(part)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([p(x.narrow(1, i * self.si, self.si)) for i, p in enumerate(self.parts)], 1)


MAX_SPLIT = 16  # beyond this many groups, separate convs are not a sensible candidate


def conv_signature(conv: nn.Conv2d, shape: tuple[int, ...]) -> str:
    return (
        f"conv {conv.in_channels}->{conv.out_channels} k{tuple(conv.kernel_size)} s{tuple(conv.stride)} "
        f"p{tuple(conv.padding)} d{tuple(conv.dilation)} g{conv.groups} bias={conv.bias is not None} "
        f"in {tuple(shape[1:])}"
    )


def conv_candidates(conv: nn.Conv2d) -> dict[ConvRealisation, Callable[[], nn.Module]]:
    """Every exact realisation of ``conv`` and how to build it: each coarser grouping, dense, and (for at most
    :data:`MAX_SPLIT` groups) the split."""
    out: dict[ConvRealisation, Callable[[], nn.Module]] = {
        ConvRealisation(g): (lambda g=g: coarsen(conv, g)) for g in coarser_group_counts(conv)
    }
    if 1 < conv.groups <= MAX_SPLIT:
        out[ConvRealisation(conv.groups, split=True)] = lambda: SplitConv(copy.deepcopy(conv)).eval()
    return out
