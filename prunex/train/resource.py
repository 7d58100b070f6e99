"""DGConv's resource constraint: minimise ℓ · [o / ζ]^a with a = α while ζ > o and a = 0 once ζ ≤ o.

ζ = Σ_ℓ C_ℓ·∏_k(1 + g_k) is the number of active weights per kernel position, o = Σ_ℓ C_in·C_out / b the budget
(b = 32 is the size of ResNeXt 32×4d's grouped convs). With α < 0 the factor (ζ/o)^|α| > 1 penalises excess.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from prunex.nn.gates import dgconv_modules, total_complexity


def budget(model: nn.Module, b: float) -> float:
    """o = Σ_ℓ C_in·C_out / b over the model's DGConv layers."""
    return sum(m.in_channels * m.out_channels for _, m in dgconv_modules(model)) / b


class _ConstraintFactor(torch.autograd.Function):
    """f(ζ) = (o/ζ)^α = (ζ/o)^(−α) while ζ > o, else 1, with f'(ζ) = −α·f/ζ while ζ > o, else 0.

    The exponent is −α·[ζ > o], so the case is chosen on the device (no value read back to the host).
    """

    @staticmethod
    def forward(ctx, zeta: Tensor, o: float, alpha: float) -> Tensor:
        exponent = (zeta > o) * -alpha
        factor = (zeta / o).pow(exponent)
        ctx.save_for_backward(zeta, factor, exponent)
        return factor

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        zeta, factor, exponent = ctx.saved_tensors
        return grad * factor * exponent / zeta, None, None


def constrained_loss(loss: Tensor, zeta: Tensor, o: float, alpha: float) -> Tensor:
    """ℓ · (o/ζ)^α while ζ > o, else ℓ."""
    return loss * _ConstraintFactor.apply(zeta, o, alpha)


def complexity_summary(model: nn.Module, b: float | None) -> dict[str, float]:
    """ζ, o and their ratio (empty for models without DGConv)."""
    if not any(True for _ in dgconv_modules(model)):
        return {}
    with torch.no_grad():
        zeta = float(total_complexity(model))
    out = {"zeta": zeta, "dense": float(budget(model, 1.0))}
    if b is not None:
        out["budget_o"] = budget(model, b)
    return out
