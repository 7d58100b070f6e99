"""Analytic complexity, pycls-style: walk an architecture's hyper-parameters, count without building it.

``params`` counts weights (conv, BN affine, linear); ``gates`` counts the learned connectivity parameters
(DGConv g̃, MaskConnect m̃) that are discarded at deployment; ``macs`` counts multiply-accumulates of conv and
linear layers (the convention of the ResNeXt / torchvision tables: ResNeXt-50 32×4d = 4.23 GFLOPs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn


@dataclass(frozen=True)
class Complexity:
    """Running count at spatial size h × w."""

    h: int
    w: int
    params: int = 0
    gates: int = 0
    macs: int = 0

    def add(self, *, params: int = 0, gates: int = 0, macs: int = 0) -> Complexity:
        return replace(self, params=self.params + params, gates=self.gates + gates, macs=self.macs + macs)

    def fresh(self) -> Complexity:
        """Zero counts at this spatial size: the start of a sub-part counted on its own."""
        return Complexity(self.h, self.w)

    def scaled(self, n: int) -> Complexity:
        """n copies of this part (parallel branches)."""
        return replace(self, params=n * self.params, gates=n * self.gates, macs=n * self.macs)

    def plus(self, part: Complexity) -> Complexity:
        """This part and a parallel one; keeps this spatial size."""
        return self.add(params=part.params, gates=part.gates, macs=part.macs)

    def then(self, part: Complexity) -> Complexity:
        """This count followed by ``part``; takes the part's spatial size."""
        return replace(
            part, params=self.params + part.params, gates=self.gates + part.gates, macs=self.macs + part.macs
        )

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "gates": self.gates, "macs": self.macs}


def conv2d(
    cx: Complexity, c_in: int, c_out: int, k: int, *, stride: int = 1, groups: int = 1, bias: bool = False
) -> Complexity:
    """k×k conv with padding k//2: (c_in/groups)·c_out·k² weights, as many MACs per output pixel."""
    h, w = (cx.h + 2 * (k // 2) - k) // stride + 1, (cx.w + 2 * (k // 2) - k) // stride + 1
    weights = c_in // groups * c_out * k * k
    out = replace(cx, h=h, w=w)
    return out.add(params=weights + (c_out if bias else 0), macs=weights * h * w)


def batchnorm2d(cx: Complexity, c: int) -> Complexity:
    return cx.add(params=2 * c)


def pool(cx: Complexity, k: int, stride: int, padding: int = 0) -> Complexity:
    return replace(cx, h=(cx.h + 2 * padding - k) // stride + 1, w=(cx.w + 2 * padding - k) // stride + 1)


def global_pool(cx: Complexity) -> Complexity:
    return replace(cx, h=1, w=1)


def linear(cx: Complexity, c_in: int, c_out: int, *, bias: bool = True) -> Complexity:
    return cx.add(params=c_in * c_out + (c_out if bias else 0), macs=c_in * c_out)


def dgconv_gates(c_in: int, c_out: int) -> int:
    """K = number of factors of two shared by C_in and C_out."""
    from prunex.nn.dgconv import two_adic_valuation

    return min(two_adic_valuation(c_in), two_adic_valuation(c_out))


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Counted from a built model: weights and gates, split the same way as the analytic count."""
    from prunex.nn.gates import gate_parameters

    gate_ids = {id(p) for p in gate_parameters(model)}
    gates = sum(p.numel() for p in model.parameters() if id(p) in gate_ids)
    return {"params": sum(p.numel() for p in model.parameters()) - gates, "gates": gates}
