"""SparseNet aggregation (Zhu et al., "Sparsely Aggregated Convolutional Networks", eq. 2).

Layer ℓ reads ⊗(y_{ℓ−c^0}, y_{ℓ−c^1}, …, y_{ℓ−c^k}) with c^k ≤ ℓ: the outputs at exponentially growing
offsets, most recent first, the stage input counted as output 0. ⊗ is concatenation (SparseNet[⊕]) or
summation (SparseNet[+]).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

AGGREGATIONS = ("concat", "sum")


def exponential_offsets(num_outputs: int, base: int = 2) -> list[int]:
    """Indices into ``outputs[0:num_outputs]`` at offsets base^0, base^1, … from the end, most recent first."""
    if base < 2:
        raise ValueError(f"the offset base c must be >= 2, got {base}")
    picks, offset = [], 1
    while offset <= num_outputs:
        picks.append(num_outputs - offset)
        offset *= base
    return picks


def aggregated_outputs(num_outputs: int, base: int = 2, dense: bool = False) -> list[int]:
    """The outputs a layer aggregates, most recent first: those at offsets base^k, or with ``dense`` every one
    (DenseNet's and ResNet's full aggregation, the papers' baseline)."""
    if dense:
        return list(range(num_outputs - 1, -1, -1))
    return exponential_offsets(num_outputs, base)


def aggregated_channels(channels: list[int], base: int = 2, mode: str = "concat", dense: bool = False) -> int:
    """Channels of the aggregation of outputs with the given channel counts."""
    picked = [channels[i] for i in aggregated_outputs(len(channels), base, dense)]
    return sum(picked) if mode == "concat" else picked[0]


class SparseAggregation(nn.Module):
    """⊗ of the outputs at offsets c^0, c^1, … (or, ``dense``, of all of them): ``concat`` or ``sum``."""

    def __init__(self, base: int = 2, mode: str = "concat", dense: bool = False) -> None:
        super().__init__()
        if mode not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {mode!r}")
        exponential_offsets(1, base)  # validates the base
        self.base, self.mode, self.dense = base, mode, dense

    def picks(self, num_outputs: int) -> list[int]:
        """The outputs aggregated from ``num_outputs`` so far, in concatenation order."""
        return aggregated_outputs(num_outputs, self.base, self.dense)

    def forward(self, outputs: list[Tensor]) -> Tensor:
        picked = [outputs[i] for i in self.picks(len(outputs))]
        if self.mode == "concat":
            return torch.cat(picked, 1) if len(picked) > 1 else picked[0]
        total = picked[0]
        for y in picked[1:]:
            total = total + y
        return total

    def extra_repr(self) -> str:
        return f"base={self.base}, mode={self.mode}" + (", dense" if self.dense else "")
