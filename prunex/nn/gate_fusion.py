"""Every gate of a model in a constant number of ops per training step, however many gated layers it has.

Each gated layer computes its own gates in a constant number of ops (:mod:`prunex.nn.dgconv_mask`,
:func:`~prunex.nn.branch_gates.sample_straight_through`), but a network has dozens of them, and on a GPU every op
is a kernel launch. :class:`GateFusion` computes them for the whole model before its forward pass:

- all DGConv layers' U ⊙ W at once (one lookup table, one masked product, one histogram for the gate gradients);
- all learned MaskConnect masks in one draw (one exponential race over every module's rows);
- ζ = Σ_ℓ ζ_ℓ of the resource constraint in one reduction (:func:`dgconv_complexity`).

The values and gradients are those of the layers' own computation; the layers then just read them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from prunex.nn.branch_gates import BranchGates, priority_order, project_masks_, sample_straight_through
from prunex.nn.concat import concat
from prunex.nn.dgconv import DGConv2d
from prunex.nn.dgconv_mask import LayerWeights, MaskPlan, masked_weights


class _ComplexityPlan:
    """Index tensors of ζ = Σ_ℓ c_ℓ ∏_k (1 + g_ℓk) over a list of DGConv layers (c_ℓ = r_in·r_out·2^K_ℓ)."""

    def __init__(self, layers: Sequence[DGConv2d]) -> None:
        device = layers[0].gate.device
        self.num_layers = len(layers)
        self.gate_layer = torch.cat(
            [torch.full((m.num_gates,), i, dtype=torch.int64) for i, m in enumerate(layers)]
        ).to(device)
        # c_ℓ·2^K_ℓ = C_in·C_out: ζ_ℓ with every gate merging
        self.dense = torch.tensor([float(m.in_channels * m.out_channels) for m in layers], device=device)


class _Complexity(torch.autograd.Function):
    """ζ = Σ_ℓ c_ℓ·2^(Σ_k g_ℓk) = Σ_ℓ c_ℓ·2^K_ℓ / 2^(#zero gates of ℓ) for binary gates g = [g̃ ≥ 0] (g̃: all
    layers' gates concatenated), with the paper's straight-through gradient
    ∂ζ/∂g̃_ℓk = c_ℓ ∏_{j≠k}(1 + g_ℓj) = ζ_ℓ / (1 + g_ℓk) = ζ_ℓ / (2 − [g_ℓk = 0]) (the derivative of the product,
    not of 2^Σg)."""

    @staticmethod
    def forward(ctx, plan: _ComplexityPlan, gates: Tensor) -> Tensor:
        zeros = torch.signbit(gates).to(gates.dtype)
        count = torch.zeros(plan.num_layers, dtype=gates.dtype, device=gates.device).index_add_(
            0, plan.gate_layer, zeros
        )
        per_layer = plan.dense / torch.exp2(count)
        ctx.plan = plan
        ctx.save_for_backward(zeros, per_layer)
        return per_layer.sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        zeros, per_layer = ctx.saved_tensors
        return None, grad * per_layer.index_select(0, ctx.plan.gate_layer) / (2 - zeros)


def dgconv_complexity(layers: Sequence[DGConv2d]) -> Tensor:
    """ζ = Σ_ℓ ζ_ℓ over ``layers`` (each ζ_ℓ as :meth:`DGConv2d.complexity`) in a constant number of ops."""
    layers = [m for m in layers if m.num_gates]
    if not layers:
        return torch.zeros(())
    return _Complexity.apply(_ComplexityPlan(layers), concat([m.gate for m in layers]))


class _DGConvGroup:
    """DGConv layers with one device, dtype and kernel size, masked together from one gate vector."""

    def __init__(self, layers: list[DGConv2d]) -> None:
        self.layers = layers
        self.plan = MaskPlan.build([(m.num_gates, m.r_out, m.r_in) for m in layers], device=layers[0].weight.device)
        self.layout = LayerWeights([m.weight for m in layers])
        self.complexity_plan = _ComplexityPlan(layers)
        self.gates: Tensor | None = None  # the concatenated gates of the last forward, for complexity()

    def compute(self) -> None:
        self.gates = concat([m.gate for m in self.layers])
        masked = masked_weights(self.plan, self.layout, self.gates, [m.weight for m in self.layers])
        for m, w in zip(self.layers, masked, strict=True):
            m.fused_weight = w

    def complexity(self) -> Tensor:
        """ζ of the group; reuses the gate vector of the last forward once, so that one gradient reaches it."""
        gates, self.gates = self.gates, None
        if gates is None:
            gates = concat([m.gate for m in self.layers])
        return _Complexity.apply(self.complexity_plan, gates)

    def release(self) -> None:
        for m in self.layers:
            m.fused_weight = None


class _BranchGroup:
    """Learned MaskConnect gates with one mask shape, fan-in, connectivity, device and dtype, sampled and projected
    together (the real-valued ablation's masks are read as they are: projected, never sampled)."""

    def __init__(self, modules: list[BranchGates]) -> None:
        self.modules = modules
        self.fan_in = modules[0].fan_in
        self.real_valued = modules[0].real_valued
        # the priorities are constant; the real-valued ablation's masks have none (only clipped)
        self.order = None if self.real_valued else priority_order(torch.stack([m.priority for m in modules]))

    def sample(self) -> None:
        if self.real_valued:
            return
        masks = sample_straight_through(torch.stack([m.weight for m in self.modules]), self.fan_in)
        averages = masks * (1.0 / self.fan_in)
        for m, mask, average in zip(self.modules, masks.unbind(0), averages.unbind(0), strict=True):
            m.fused_mask, m.fused_average = mask, average

    def release(self) -> None:
        for m in self.modules:
            m.fused_mask = m.fused_average = None

    def project_(self) -> None:
        project_masks_([m.weight for m in self.modules], self.fan_in, self.order)
        for m in self.modules:
            m.projected_version = m.weight._version

    def project_if_stale_(self) -> None:
        """:meth:`project_` when an optimiser step wrote any of the masks since (a host-side check)."""
        if any(m.stale for m in self.modules):
            self.project_()


def _dgconv_key(m: DGConv2d) -> tuple:
    w = m.weight
    return (w.device, w.dtype, w.shape[2] * w.shape[3])


class GateFusion:
    """The gates of every gated layer of ``model``, computed once per forward pass in one batch per kind, and the
    model-wide quantities of the gates (:meth:`complexity`, :meth:`project_`) in a constant number of ops.

    :func:`~prunex.nn.fuse_gates` installs one on a model as forward hooks (models that prunex builds come with
    it); :meth:`before_forward` and :meth:`after_forward` are what the hooks call. Layers added to the model later
    are picked up on the next forward pass. Its groups are a cache: a copy of the fusion (``copy.deepcopy`` or
    pickling the model) starts without them.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._forget_groups()

    def _forget_groups(self) -> None:
        self._dgconv: list[_DGConvGroup] = []
        self._branch: list[_BranchGroup] = []
        self._dgconv_signature: tuple | None = None
        self._branch_signature: tuple | None = None

    def __getstate__(self) -> dict:
        return {"model": self.model}

    def __setstate__(self, state: dict) -> None:
        self.model = state["model"]
        self._forget_groups()

    # -- set-up --------------------------------------------------------------------------------------
    def _dgconv_layers(self) -> list[DGConv2d]:
        return [m for m in self.model.modules() if isinstance(m, DGConv2d) and m.num_gates]

    def _dgconv_groups(self) -> list[_DGConvGroup]:
        """The DGConv groups, rebuilt when the layers, their devices or dtypes changed since the last call."""
        layers = self._dgconv_layers()
        signature = tuple((id(m), _dgconv_key(m)) for m in layers)
        if signature != self._dgconv_signature:
            self._dgconv_signature = signature
            groups: dict[tuple, list[DGConv2d]] = defaultdict(list)
            for m in sorted(layers, key=lambda m: tuple(m.weight.shape)):  # equal shapes together: fewer views
                groups[_dgconv_key(m)].append(m)
            self._dgconv = [_DGConvGroup(group) for group in groups.values()]
        return self._dgconv

    def _branch_groups(self) -> list[_BranchGroup]:
        """The groups of learned MaskConnect gates, rebuilt when they changed (e.g. were frozen)."""
        learned = [m for m in self.model.modules() if isinstance(m, BranchGates) and m.weight is not None]
        signature = tuple((id(m), m.weight.device, m.weight.dtype) for m in learned)
        if signature != self._branch_signature:
            self._branch_signature = signature
            groups: dict[tuple, list[BranchGates]] = defaultdict(list)
            for m in learned:
                groups[(m.weight.shape, m.weight.device, m.weight.dtype, m.fan_in, m.connectivity)].append(m)
            self._branch = [_BranchGroup(group) for group in groups.values()]
        return self._branch

    # -- one forward pass ------------------------------------------------------------------------------
    def before_forward(self, *, fuse: bool = True) -> None:
        """Project the MaskConnect masks an optimiser step changed since the last pass; then, with ``fuse``, compute
        every DGConv layer's U ⊙ W and sample every learned mask for the pass about to run."""
        groups = self._branch_groups()
        for group in groups:
            group.project_if_stale_()
        if not fuse:
            return
        for group in self._dgconv_groups():
            group.compute()
        for group in groups:
            group.sample()

    def after_forward(self) -> None:
        """Let the layers compute their own gates again (outside a fused pass)."""
        for group in self._dgconv:
            group.release()
        for group in self._branch:
            group.release()

    # -- model-wide quantities -----------------------------------------------------------------------
    def complexity(self) -> Tensor:
        """ζ = Σ_ℓ ζ_ℓ over the model's DGConv layers, differentiable in the gates, in a constant number of ops
        (call it after the forward pass: it shares that pass's gate vector)."""
        terms = [group.complexity() for group in self._dgconv_groups()]
        if not terms:
            return torch.zeros(())
        return terms[0] if len(terms) == 1 else torch.stack(terms).sum()

    @torch.no_grad()
    def project_(self) -> None:
        """Clip every learned MaskConnect mask to [0, 1] as :meth:`BranchGates.project_` does, one batch per
        mask shape (after an optimiser step; the next forward pass does it anyway when it was not called)."""
        for group in self._branch_groups():
            group.project_()
