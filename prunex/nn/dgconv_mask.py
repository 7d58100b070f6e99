"""DGConv's masked weight W ⊙ U(g) and its straight-through gradients in a constant number of ops, for one
layer or for many layers at once.

Index a channel c of a layer with K gates by its group bits b(c) = ⌊c / r⌋ (K bits, gate k ↔ bit value
β_k = 2^(K−1−k)) and let D[o, i] = b(o) XOR b(i) be the bits in which output channel o and input channel i
differ. With Z = Σ_{k: g_k = 0} β_k the separating (zero-gate) bits,

    U[o, i] = ∏_k (g_k + (1 − g_k)·[β_k ∉ D[o, i]]) = [D[o, i] ∧ Z = 0],

which is the Kronecker product ⊗_k (g_k·1 + (1 − g_k)·I) ⊗ 1_{r_out×r_in} read entry by entry. Its derivative
is the mask with bit k released, restricted to the pairs that differ in bit k:

    ∂U[o, i]/∂g_k = [β_k ∈ D[o, i]] · [D[o, i] ∧ Z ∧ ¬β_k = 0].

The gates are straight-through (∂g/∂g̃ = 1), so ∂L/∂g̃_k = Σ_{o,i} Γ[o, i] ∂U[o, i]/∂g_k with
Γ[o, i] = Σ_{h,w} ∂L/∂(U ⊙ W)[o, i, h, w] · W[o, i, h, w]. Both factors of the derivative depend on (o, i) only
through D, so Γ is first summed into a histogram H[d] = Σ_{D[o,i] = d} Γ[o, i] over the 2^K values of D and
all K gate gradients are one masked reduction of H: ∂L/∂g̃_k = Σ_d H[d] · [β_k ∈ d] · [d ∧ Z ∧ ¬β_k = 0].

Several layers share one computation by giving layer ℓ the codes ℓ·2^K_max + D_ℓ: one lookup table of
[d ∧ Z_ℓ = 0], one histogram and one reduction serve every layer, so the op count does not grow with the
number of layers either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def gate_bit_values(num_gates: int) -> Tensor:
    """β_k = 2^(K−1−k): gate k acts on bit K−1−k of the group index (gate 0 on the most significant bit)."""
    return torch.tensor([1 << (num_gates - 1 - k) for k in range(num_gates)], dtype=torch.int64)


def bit_differences(num_gates: int, r_out: int, r_in: int) -> Tensor:
    """D[o, i] = ⌊o / r_out⌋ XOR ⌊i / r_in⌋, shape (r_out·2^K, r_in·2^K), int32."""
    b_out = torch.arange(r_out << num_gates) // r_out
    b_in = torch.arange(r_in << num_gates) // r_in
    return (b_out[:, None] ^ b_in[None, :]).to(torch.int32)


@dataclass
class MaskPlan:
    """The static index tensors of a masking computation over L layers (all on one device).

    ``code[p]`` is ℓ·bins + D[o, i] for pair p = (o, i) of layer ℓ, in the layers' order and row-major within
    each layer; ``gate_layer`` / ``gate_bit`` give each gate's layer and bit value; ``has_bit[j, d]`` is
    [β_j ∈ d]; ``bin_values`` is 0 … bins − 1.
    """

    code: Tensor
    gate_layer: Tensor
    gate_bit: Tensor
    gate_keep: Tensor  # ¬β_j
    has_bit: Tensor
    bin_values: Tensor
    num_layers: int
    bins: int
    gates_per_layer: tuple[int, ...]

    @staticmethod
    def build(layers: Sequence[tuple[int, int, int]], device: torch.device | str | None = None) -> MaskPlan:
        """The plan for layers given as (K, r_out, r_in), each with K ≥ 1."""
        if not layers or any(k < 1 for k, _, _ in layers):
            raise ValueError("a mask plan needs at least one layer, each with at least one gate")
        k_max = max(k for k, _, _ in layers)
        bins = 1 << k_max
        code = torch.cat([bit_differences(k, ro, ri).flatten() + ell * bins for ell, (k, ro, ri) in enumerate(layers)])
        gate_bit = torch.cat([gate_bit_values(k) for k, _, _ in layers])
        gate_layer = torch.cat([torch.full((k,), ell, dtype=torch.int64) for ell, (k, _, _) in enumerate(layers)])
        bin_values = torch.arange(bins, dtype=torch.int64)
        return MaskPlan(
            code=code.to(torch.int32).to(device),
            gate_layer=gate_layer.to(device),
            gate_bit=gate_bit.to(device),
            gate_keep=(~gate_bit).to(device),
            has_bit=((bin_values[None, :] & gate_bit[:, None]) != 0).to(device),
            bin_values=bin_values.to(device),
            num_layers=len(layers),
            bins=bins,
            gates_per_layer=tuple(k for k, _, _ in layers),
        )

    def tensors(self) -> dict[str, Tensor]:
        return {
            name: getattr(self, name)
            for name in ("code", "gate_layer", "gate_bit", "gate_keep", "has_bit", "bin_values")
        }

    @staticmethod
    def from_tensors(tensors: dict[str, Tensor], gates_per_layer: tuple[int, ...]) -> MaskPlan:
        k_max = max(gates_per_layer)
        return MaskPlan(**tensors, num_layers=len(gates_per_layer), bins=1 << k_max, gates_per_layer=gates_per_layer)


def zero_gate_bits(plan: MaskPlan, gates: Tensor) -> Tensor:
    """Z_ℓ = Σ_{k: g̃_k has its sign bit set} β_k per layer, int64 of shape (L,), from all gates concatenated.

    NOTE: the sign is read from the sign bit (see :func:`prunex.nn.dgconv.binarize_gates`).
    """
    bits = torch.signbit(gates) * plan.gate_bit
    if plan.num_layers == 1:
        return bits.sum(0, keepdim=True)
    return torch.zeros(plan.num_layers, dtype=torch.int64, device=gates.device).index_add_(0, plan.gate_layer, bits)


def pair_mask(plan: MaskPlan, zero_bits: Tensor) -> Tensor:
    """U for every pair of every layer (bool, in ``plan.code`` order): a lookup of [d ∧ Z_ℓ = 0]."""
    table = (plan.bin_values & zero_bits[:, None]) == 0  # (L, bins)
    return table.view(-1).index_select(0, plan.code)


def gate_gradients(plan: MaskPlan, zero_bits: Tensor, pair_grad: Tensor) -> Tensor:
    """∂L/∂g̃ for all gates (concatenated) from Γ (``pair_grad``, in ``plan.code`` order)."""
    hist = torch.zeros(plan.num_layers * plan.bins, dtype=pair_grad.dtype, device=pair_grad.device)
    hist = hist.index_add_(0, plan.code, pair_grad).view(plan.num_layers, plan.bins)
    z = zero_bits.index_select(0, plan.gate_layer)
    released = (plan.bin_values & (z & plan.gate_keep)[:, None]) == 0  # D ∧ Z ∧ ¬β_k = 0
    return (hist.index_select(0, plan.gate_layer) * (released & plan.has_bit)).sum(1)


class LayerWeights:
    """The weights of the layers a :class:`MaskPlan` covers, seen as one pair-major (pairs, k_h·k_w) matrix.

    One layer is viewed in place; several are copied into one flat buffer that is reused every step, so that
    the mask, the weight gradient and Γ take one op each for all of them. Views give the layers back, one split
    per run of consecutive layers of equal shape (list layers of equal shape together to need fewer).
    """

    def __init__(self, weights: Sequence[Tensor]) -> None:
        first = weights[0]
        self.kernel = first.shape[2] * first.shape[3]
        if any(w.dim() != 4 or w.shape[2] * w.shape[3] != self.kernel for w in weights):
            raise ValueError("layers masked together need 4-D weights with equal kernel sizes")
        self.shapes = [w.shape for w in weights]
        self.sizes = [w.numel() for w in weights]
        self.runs: list[tuple[int, torch.Size]] = []  # (layers, shape) of consecutive layers of equal shape
        for shape in self.shapes:
            if self.runs and self.runs[-1][1] == shape:
                self.runs[-1] = (self.runs[-1][0] + 1, shape)
            else:
                self.runs.append((1, shape))
        self.pairs = sum(self.sizes) // self.kernel
        self.single = len(weights) == 1
        self.stamp = 0
        if not self.single:
            options = dict(dtype=first.dtype, device=first.device)
            self.weight_buffer = torch.empty(sum(self.sizes), **options)
            self.grad_buffer = torch.empty(sum(self.sizes), **options)
            self.weight_views = self._views(self.weight_buffer)
            self.grad_views = self._views(self.grad_buffer)

    def _views(self, flat: Tensor) -> list[Tensor]:
        chunks = flat.split([n * shape.numel() for n, shape in self.runs]) if len(self.runs) > 1 else [flat]
        views: list[Tensor] = []
        for chunk, (n, shape) in zip(chunks, self.runs, strict=True):
            views += chunk.view(n, *shape).unbind(0) if n > 1 else [chunk.view(shape)]
        return views

    def gather(self, weights: Sequence[Tensor]) -> Tensor:
        """The weights as one (pairs, k_h·k_w) matrix."""
        self.stamp += 1
        if self.single:
            return weights[0].reshape(self.pairs, self.kernel)
        torch._foreach_copy_(self.weight_views, list(weights))
        return self.weight_buffer.view(self.pairs, self.kernel)

    def gathered_since(self, stamp: int, weights: Sequence[Tensor]) -> Tensor:
        """The matrix :meth:`gather` returned at ``stamp``; gathered again if a later forward reused the buffer."""
        if self.single or stamp != self.stamp:
            return self.gather(weights)
        return self.weight_buffer.view(self.pairs, self.kernel)

    def gather_grads(self, grads: Sequence[Tensor | None]) -> Tensor:
        if self.single:  # MaskedWeights.backward is not reached when its only output has no gradient
            return grads[0].reshape(self.pairs, self.kernel)
        present = [(v, g) for v, g in zip(self.grad_views, grads, strict=True) if g is not None]
        if len(present) < len(self.grad_views):  # an output that did not reach the loss
            for v, g in zip(self.grad_views, grads, strict=True):
                if g is None:
                    v.zero_()
        if present:
            torch._foreach_copy_([v for v, _ in present], [g for _, g in present])
        return self.grad_buffer.view(self.pairs, self.kernel)

    def scatter(self, flat: Tensor) -> list[Tensor]:
        """The rows of a (pairs, k_h·k_w) matrix as tensors shaped like the layers' weights (views)."""
        return self._views(flat.view(-1))


class MaskedWeights(torch.autograd.Function):
    """(g̃, W_1, …, W_L) ↦ (U_ℓ ⊙ W_ℓ)_ℓ with the paper's straight-through gate gradient (module docstring);
    g̃ is every layer's gates concatenated."""

    @staticmethod
    def forward(ctx, plan: MaskPlan, layout: LayerWeights, gates: Tensor, *weights: Tensor) -> tuple[Tensor, ...]:
        zero_bits = zero_gate_bits(plan, gates)
        mask = pair_mask(plan, zero_bits)
        flat = layout.gather(weights)
        ctx.set_materialize_grads(False)
        ctx.plan, ctx.layout, ctx.stamp, ctx.gate_dtype = plan, layout, layout.stamp, gates.dtype
        ctx.save_for_backward(zero_bits, mask, *weights)
        return tuple(layout.scatter(flat * mask[:, None]))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: Tensor | None):
        plan, layout = ctx.plan, ctx.layout
        zero_bits, mask, *weights = ctx.saved_tensors
        weight_grads: tuple[Tensor | None, ...] = (None,) * len(weights)
        gate_grad = None
        if all(g is None for g in grads):
            return (None, None, gate_grad, *weight_grads)
        grad_flat = layout.gather_grads(grads)
        if any(ctx.needs_input_grad[3:]):
            weight_grads = tuple(layout.scatter(grad_flat * mask[:, None]))
        if ctx.needs_input_grad[2]:
            gamma = (grad_flat * layout.gathered_since(ctx.stamp, weights)).sum(1)
            gate_grad = gate_gradients(plan, zero_bits, gamma).to(ctx.gate_dtype)
        return (None, None, gate_grad, *weight_grads)


def masked_weights(plan: MaskPlan, layout: LayerWeights, gates: Tensor, weights: Sequence[Tensor]) -> list[Tensor]:
    """U_ℓ ⊙ W_ℓ for every layer of ``plan`` (``gates``: all layers' gates concatenated): through
    :class:`MaskedWeights` when a gradient is wanted, else with the same ops and no autograd node."""
    if torch.is_grad_enabled() and (gates.requires_grad or any(w.requires_grad for w in weights)):
        return list(MaskedWeights.apply(plan, layout, gates, *weights))
    mask = pair_mask(plan, zero_gate_bits(plan, gates))
    return layout.scatter(layout.gather(weights) * mask[:, None])
