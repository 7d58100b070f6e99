"""Dynamic grouping convolution (DGConv; Zhang et al., "Differentiable Learning-to-Group Channels", eq. 3-7).

y = conv(x, U ⊙ W) with the relationship matrix

    U = U_1 ⊗ U_2 ⊗ … ⊗ U_K ⊗ 1_{r_out × r_in},    U_k = g_k·1 + (1 − g_k)·I  (2×2),

and binary gates g_k = [g̃_k ≥ 0] trained with a straight-through estimator. Index a channel c = b·r + ρ by
the K bits of b (b_1 most significant) and ρ < r. Then U[o, i] = ∏_{k: g_k = 0} [b_k(o) = b_k(i)]: a gate of 1
*merges* along bit k, a gate of 0 *separates*. The layer is therefore a grouped convolution with
G = 2^(#zero gates) groups whose members are gathered by the channel permutation

    π(c) = (zero-gate bits of c)·S + (one-gate bits of c)·r + ρ,   S = r·2^(#one gates),

so that P U Pᵀ = I_G ⊗ 1 and DGConv(x) = P_outᵀ · GroupConv_G(P_in x).

Training builds U ⊙ W and the gates' gradient in a constant number of ops whatever K
(:mod:`prunex.nn.dgconv_mask`); :func:`relation_matrix` is the Kronecker product itself, the reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.common_types import _size_2_t

from prunex.nn.conv_geometry import conv_geometry, conv_like
from prunex.nn.dgconv_mask import LayerWeights, MaskPlan, masked_weights

GATE_INIT = 1e-8  # the paper initialises every gate to ±1e-8 with a random sign


def two_adic_valuation(n: int) -> int:
    """Largest K with 2^K dividing n (n > 0)."""
    if n <= 0:
        raise ValueError(f"channel count must be positive, got {n}")
    return (n & -n).bit_length() - 1


def binarize_gates(gate: Tensor) -> Tensor:
    """g = [g̃ ≥ 0] in the forward pass, identity gradient in the backward pass (straight-through).

    NOTE: the sign is read from the sign bit, so a gate of -1e-8 that a cast to float16 flushes to -0.0 stays 0
    (the paper's eq. 6 would map -0.0 to 1).
    """
    hard = (~torch.signbit(gate)).to(gate.dtype)
    return hard + (gate - gate.detach())  # exactly hard in value: (g̃ − g̃) is 0 before the addition


def relation_matrix(gates: Tensor, r_out: int = 1, r_in: int = 1) -> Tensor:
    """U = ⊗_k (g_k·1 + (1 − g_k)·I) ⊗ 1_{r_out×r_in}, shape (r_out·2^K, r_in·2^K); differentiable in g."""
    ones = torch.ones(2, 2, dtype=gates.dtype, device=gates.device)
    eye = torch.eye(2, dtype=gates.dtype, device=gates.device)
    u = torch.ones(1, 1, dtype=gates.dtype, device=gates.device)
    for g in gates.unbind(0):
        u = torch.kron(u, g * ones + (1 - g) * eye)
    return torch.kron(u, torch.ones(r_out, r_in, dtype=gates.dtype, device=gates.device))


def group_order(gates: Sequence[int], r: int = 1) -> Tensor:
    """Channel order that makes U block diagonal: ``order[π(c)] = c`` (a generalised channel shuffle).

    Gathering ``x[:, order]`` moves the separating (zero-gate) bits to the front, so channels of one group
    become contiguous.
    """
    gates = [int(g) for g in gates]
    k = len(gates)
    c = torch.arange(r << k)
    b, rho = c // r, c % r
    zero_bits = torch.zeros_like(c)
    one_bits = torch.zeros_like(c)
    for pos, g in enumerate(gates):
        bit = (b >> (k - 1 - pos)) & 1
        if g:
            one_bits = one_bits * 2 + bit
        else:
            zero_bits = zero_bits * 2 + bit
    group_size = r << sum(gates)
    pi = zero_bits * group_size + one_bits * r + rho
    order = torch.empty_like(c)
    order[pi] = c
    return order


class DGConv2d(nn.Conv2d):
    """Dynamic grouping conv: y = conv(x, U ⊙ W) with U = ⊗_k (g_k·1 + (1−g_k)·I) ⊗ 1_{r_out×r_in}.

    A drop-in for ``nn.Conv2d`` (no ``groups`` argument: the grouping is learned). Channel counts
    C_in = r_in·2^K and C_out = r_out·2^K, with K the number of factors of two both share; the r_out×r_in
    all-ones factor is always merged. The dense weight W is kept during training, as in the paper.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _size_2_t,
        stride: _size_2_t = 1,
        padding: _size_2_t | str = 0,
        dilation: _size_2_t = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=1,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self.num_gates = min(two_adic_valuation(in_channels), two_adic_valuation(out_channels))
        self.r_in = in_channels >> self.num_gates
        self.r_out = out_channels >> self.num_gates
        self.gate = nn.Parameter(torch.empty(self.num_gates, device=device, dtype=torch.float32))
        self.reset_gates()
        # Index tensors of the masking computation (moved with the module, not saved with it).
        self._plan_buffers: tuple[str, ...] = ()
        if self.num_gates:
            plan = MaskPlan.build([(self.num_gates, self.r_out, self.r_in)], device=device)
            for name, tensor in plan.tensors().items():
                self.register_buffer(f"_mask_{name}", tensor, persistent=False)
            self._plan_buffers = tuple(plan.tensors())
        # U ⊙ W for the current forward when a DGConvFusion computed it for many layers at once.
        self.fused_weight: Tensor | None = None

    def reset_gates(self, generator: torch.Generator | None = None) -> None:
        """Gates at ±1e-8 with a random sign (the paper's initialisation)."""
        sign = torch.randint(0, 2, (self.num_gates,), generator=generator).float() * 2 - 1
        with torch.no_grad():
            self.gate.copy_(sign * GATE_INIT)

    # -- the learned structure -------------------------------------------------------------------------
    def binary_gates(self) -> Tensor:
        """g ∈ {0, 1}^K as a detached integer tensor."""
        return (~torch.signbit(self.gate.detach())).long()

    def gate_list(self) -> list[int]:
        return [int(g) for g in self.binary_gates().tolist()]

    @property
    def num_groups(self) -> int:
        """G = 2^(number of zero gates)."""
        return 1 << (self.num_gates - int(self.binary_gates().sum()))

    def in_order(self) -> Tensor:
        """Input channel order (gather indices) that makes every group contiguous."""
        return group_order(self.gate_list(), self.r_in)

    def out_order(self) -> Tensor:
        """Output channel order (gather indices) that makes every group contiguous."""
        return group_order(self.gate_list(), self.r_out)

    def relation_matrix(self) -> Tensor:
        """U (C_out × C_in) from the straight-through binary gates."""
        return relation_matrix(binarize_gates(self.gate), self.r_out, self.r_in)

    def complexity(self) -> Tensor:
        """ζ = ΣU = r_in·r_out·2^K·∏_k(1 + g_k) (= C·∏(1+g_k) for square power-of-two layers).

        Built as a product so that ∂ζ/∂g_k = r_in·r_out·2^K·∏_{j≠k}(1 + g_j), the paper's gradient (not the
        derivative of 2^(K+Σg)). Equals the deployed grouped-conv weight count divided by k_h·k_w.
        """
        g = binarize_gates(self.gate)
        return (self.r_in * self.r_out * (1 << self.num_gates)) * torch.prod(1 + g)

    def mask_plan(self) -> MaskPlan:
        """This layer's masking plan (:mod:`prunex.nn.dgconv_mask`), on the module's device."""
        tensors = {name: getattr(self, f"_mask_{name}") for name in self._plan_buffers}
        return MaskPlan.from_tensors(tensors, (self.num_gates,))

    def effective_weight(self) -> Tensor:
        """U ⊙ W: computed for this forward by a :class:`~prunex.nn.DGConvFusion`, or here in constant ops."""
        if self.fused_weight is not None:
            return self.fused_weight
        if not self.num_gates:
            return self.weight  # U = 1_{r_out×r_in}
        if torch.compiler.is_compiling():  # the compiler fuses the Kronecker products and derives their gradient
            return self.weight * self.relation_matrix().to(self.weight.dtype)[:, :, None, None]
        return masked_weights(self.mask_plan(), LayerWeights([self.weight]), self.gate, [self.weight])[0]

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)

    # -- deploy conversion -------------------------------------------------------------------------------
    def grouped_weight(self) -> Tensor:
        """Diagonal blocks of P_out (U ⊙ W) P_inᵀ, shape (C_out, C_in / G, k_h, k_w)."""
        g = self.num_groups
        so, si = self.out_channels // g, self.in_channels // g
        w = self.weight.detach()[self.out_order()][:, self.in_order()]
        blocks = [w[i * so : (i + 1) * so, i * si : (i + 1) * si] for i in range(g)]
        return torch.cat(blocks, 0)

    def conv_like(self, groups: int = 1) -> nn.Conv2d:
        """A fresh ``nn.Conv2d`` with this layer's geometry and ``groups`` groups."""
        return conv_like(self, groups=groups)

    def to_grouped_conv(self) -> tuple[nn.Conv2d, Tensor, Tensor]:
        """Exact realisation as (conv, in_order, out_order): y[:, out_order] = conv(x[:, in_order])."""
        conv = self.conv_like(self.num_groups)
        out_order = self.out_order()
        with torch.no_grad():
            conv.weight.copy_(self.grouped_weight())
            if self.bias is not None:
                conv.bias.copy_(self.bias.detach()[out_order])
        return conv, self.in_order(), out_order

    @classmethod
    def shaped_like(cls, conv: nn.Conv2d) -> DGConv2d:
        """A fresh DGConv with the geometry (channels, kernel, stride, padding, dilation, bias) of ``conv``."""
        return cls(conv.in_channels, conv.out_channels, **conv_geometry(conv))

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> DGConv2d:
        """An exact copy of a (grouped) ``nn.Conv2d`` whose G contiguous groups become the gates
        g = (0,…,0, 1,…,1) with log2(G) leading zeros; weights outside the groups start at zero."""
        groups = conv.groups
        layer = cls.shaped_like(conv)
        zeros = groups.bit_length() - 1
        if groups != 1 << zeros or zeros > layer.num_gates:
            raise ValueError(
                f"cannot express {groups} groups over {conv.in_channels}->{conv.out_channels} channels as a "
                f"DGConv: the group count must be a power of two of at most 2^{layer.num_gates}"
            )
        so, si = conv.out_channels // groups, conv.in_channels // groups
        with torch.no_grad():
            layer.weight.zero_()
            for i in range(groups):
                layer.weight[i * so : (i + 1) * so, i * si : (i + 1) * si] = conv.weight[i * so : (i + 1) * so]
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
            layer.gate.copy_(torch.tensor([-GATE_INIT] * zeros + [GATE_INIT] * (layer.num_gates - zeros)))
        return layer

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gates={self.gate_list()}, learned_groups={self.num_groups}"
