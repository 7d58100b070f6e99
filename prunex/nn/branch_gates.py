"""MaskConnect branch gates (Ahmed & Torresani): K-of-C input connections between multi-branch modules.

Block j of module i reads x_j = Σ_k m_jk · y_k, the outputs y_k of the C blocks of module i−1, through a binary
mask m_j ∈ {0,1}^C with Σ_k m_jk = K. Training keeps a real mask m̃_j ∈ [0,1]^C; each forward draws K distinct
indices from Mult(m̃_j / Σ_k m̃_jk), and the gradient with respect to the binary mask updates m̃ (straight
through). After training, the K largest entries of m̃_j are frozen.

The paper's ablation (§4.1, "Model with real-valued masks") reads the real masks themselves instead:
x_j = Σ_k m̃_jk · y_k with m̃ clipped to [0, 1] after each step and no sampling (:attr:`Connectivity.REAL_VALUED`).
"""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import Tensor, nn

MASK_FLOOR = 1e-6  # smallest value projection gives an entry it must keep positive


class Connectivity(StrEnum):
    """How a module's connections are chosen (MaskConnect, Table 1)."""

    LEARNED = "learned"  # MaskConnect: sampled K-of-C masks with a learned real mask
    FIXED_RANDOM = "fixed_random"  # K random connections per block, drawn once and kept
    FIXED_FULL = "fixed_full"  # K = C: every block reads every branch (no sampling)
    REAL_VALUED = "real_valued"  # the paper's ablation: the real masks weigh every branch, unsampled

    @property
    def learnable(self) -> bool:
        """True when the masks are parameters (learned binary masks, or the real-valued ablation's)."""
        return self in (Connectivity.LEARNED, Connectivity.REAL_VALUED)


def sample_k_of_c(probs: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """Binary masks with exactly k ones per row (last dim): k distinct draws from Mult(p / Σp), in float64.

    Sampling without replacement is an exponential race: with q ~ Exp(1) i.i.d., the k largest p/q are k
    successive draws from the renormalised multinomial. This is how ``torch.multinomial`` draws without
    replacement, and for rows with at least k positive entries the masks equal its masks for the same
    generator state; unlike it, nothing here reads a value back to the host. A row with fewer than k positive
    entries keeps all of them and fills the rest uniformly from its zero entries (their keys −q are negative and
    in random order); the projection of :class:`BranchGates` keeps learned masks from ever getting there.
    """
    c = probs.shape[-1]
    if not 1 <= k <= c:
        raise ValueError(f"fan-in K must be in [1, {c}], got {k}")
    p = probs.detach().to(torch.float64).clamp(min=0)
    q = torch.empty_like(p).exponential_(generator=generator)
    keys = torch.where(p > 0, p / q, -q)
    idx = keys.topk(k, dim=-1).indices
    return torch.zeros(probs.shape, dtype=probs.dtype, device=probs.device).scatter_(-1, idx, 1.0)


class _StraightThroughSample(torch.autograd.Function):
    """m = sample_k_of_c(m̃) in the forward pass, ∂L/∂m̃ = ∂L/∂m in the backward pass (no ops)."""

    @staticmethod
    def forward(ctx, weight: Tensor, k: int) -> Tensor:
        return sample_k_of_c(weight, k)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


def sample_straight_through(weight: Tensor, k: int) -> Tensor:
    """K-of-C masks sampled from the real masks ``weight`` (any leading dims), with the straight-through gradient
    of MaskConnect: exactly binary in value, identity in the backward pass."""
    return _StraightThroughSample.apply(weight, k)


def priority_order(priority: Tensor) -> Tensor:
    """Indices of each row by descending ``priority`` (stable): the tie-breaking order of :func:`topk_mask`."""
    return torch.sort(priority, dim=-1, descending=True, stable=True).indices


def topk_mask(weights: Tensor, k: int, priority: Tensor | None = None, *, order: Tensor | None = None) -> Tensor:
    """Deterministic binary mask of the k largest entries per row (last dim).

    Ties (common once the clipped real masks saturate at 1) go to the higher ``priority`` (or its precomputed
    :func:`priority_order`), or to the lower index without one; two stable sorts make this exact and independent of
    the backend.
    """
    w = weights.detach()
    if order is None:
        order = torch.arange(w.shape[-1], device=w.device).expand_as(w)
        if priority is not None:
            order = priority_order(priority.to(w.device))
    by_value = torch.sort(w.gather(-1, order), dim=-1, descending=True, stable=True).indices[..., :k]
    idx = order.gather(-1, by_value)
    return torch.zeros(w.shape, dtype=weights.dtype, device=weights.device).scatter_(-1, idx, 1.0)


@torch.no_grad()
def project_masks_(weights: list[Tensor], k: int, order: Tensor | None) -> None:
    """Clip real masks of equal shape to [0, 1] in place, keeping at least k positive entries per row: in a row
    left with fewer, the k entries of :func:`topk_mask` are raised to at least ``MASK_FLOOR``. One pass for all
    masks (``order``: their :func:`priority_order` stacked), with no value read back to the host. Without an
    ``order`` (the real-valued ablation, nothing sampled) only the clip: an entry may reach 0 and stay there."""
    if order is None:
        torch._foreach_clamp_min_(weights, 0.0)
        torch._foreach_clamp_max_(weights, 1.0)
        return
    w = torch.stack(weights).clamp_(0.0, 1.0)
    short = (w > 0).sum(-1, keepdim=True) < k
    keep = topk_mask(w, k, order=order) > 0
    torch._foreach_copy_(weights, list(torch.where(short & keep, w.clamp(min=MASK_FLOOR), w).unbind(0)))


class BranchGates(nn.Module):
    """K-of-C connections of ``num_blocks`` blocks to ``num_inputs`` branch outputs: x_j = Σ_k m_jk · y_k."""

    def __init__(
        self,
        num_blocks: int,
        num_inputs: int,
        fan_in: int,
        connectivity: Connectivity | str = Connectivity.LEARNED,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.connectivity = Connectivity(connectivity)
        if not 1 <= fan_in <= num_inputs:
            raise ValueError(f"fan-in K must be in [1, {num_inputs}], got {fan_in}")
        if self.connectivity is Connectivity.FIXED_FULL and fan_in != num_inputs:
            raise ValueError(f"fixed_full connectivity means K = C = {num_inputs}, got K = {fan_in}")
        self.num_blocks, self.num_inputs, self.fan_in = num_blocks, num_inputs, fan_in
        if self.connectivity.learnable:
            # NOTE: the paper does not give the initial real mask. Near-uniform values let the early
            # sampling explore all connections; the small jitter breaks ties for top-K.
            init = 0.5 + 0.01 * (torch.rand(num_blocks, num_inputs, generator=generator) - 0.5)
            self.weight = nn.Parameter(init)
            self.register_buffer("mask", None)
            # NOTE: top-K among equal values is left open by the paper; a fixed random priority breaks such ties
            # (by index they would all go to branch 0 once the clipped masks saturate).
            priority = torch.rand(num_blocks, num_inputs, generator=generator)
            self.register_buffer("priority", priority if self.connectivity is Connectivity.LEARNED else None)
        elif self.connectivity is Connectivity.FIXED_RANDOM:
            self.weight = None
            uniform = torch.ones(num_blocks, num_inputs)
            self.register_buffer("mask", sample_k_of_c(uniform, fan_in, generator))
        else:
            self.weight = None
            self.register_buffer("mask", torch.ones(num_blocks, num_inputs))
        # the mask (and mask / K) of the current forward when a GateFusion sampled many modules' masks at once
        self.fused_mask: Tensor | None = None
        self.fused_average: Tensor | None = None
        # the real mask's version counter when it was last projected (lazy projection: see project_if_stale_)
        self.projected_version: int | None = self.weight._version if self.weight is not None else None
        self.register_state_dict_pre_hook(_project_before_saving)

    @property
    def frozen(self) -> bool:
        """True once the mask is a constant (fixed connectivity or after :meth:`freeze`)."""
        return self.mask is not None

    @property
    def real_valued(self) -> bool:
        """True for the real-valued ablation: every branch is read with its real weight m̃_jk."""
        return self.connectivity is Connectivity.REAL_VALUED

    def binary_mask(self) -> Tensor:
        """The deterministic mask: the frozen one, or top-K of the real mask (the real-valued ablation: 1 where
        m̃_jk > 0, the connections its blocks read)."""
        if self.mask is not None:
            return (self.mask > 0).to(self.mask.dtype) if self.real_valued else self.mask
        self.project_if_stale_()
        if self.real_valued:
            return (self.weight > 0).to(self.weight.dtype).detach()
        return topk_mask(self.weight, self.fan_in, self.priority)

    @property
    def stale(self) -> bool:
        """True when the real mask was written (an optimiser step) since it was last projected."""
        weight = self.weight  # a Proxy, not a Tensor, while torch.fx traces the forward pass
        return isinstance(weight, Tensor) and weight._version != self.projected_version

    def forward(self) -> Tensor:
        """The mask to apply now: sampled with a straight-through gradient when learning, else constant."""
        if self.mask is not None:
            return self.mask
        if _running_eagerly():
            self.project_if_stale_()
        if self.real_valued:
            return self.weight
        if not self.training:
            return topk_mask(self.weight, self.fan_in, self.priority)
        if self.fused_mask is not None:
            return self.fused_mask
        return sample_straight_through(self.weight, self.fan_in)

    def average(self) -> Tensor:
        """m / K: the weights of the average x_j = (1/K)·Σ_k m_jk·y_k of the K inputs a block reads."""
        if self.fused_average is not None and self.training and self.mask is None:
            return self.fused_average
        return self() * (1.0 / self.fan_in)

    @torch.no_grad()
    def freeze(self) -> None:
        """Fix the connectivity at top-K of the real mask (the real-valued ablation: at the real mask's values); the
        real mask stops being a parameter."""
        if self.mask is None:
            self.project_if_stale_()
            if self.real_valued:
                mask = self.weight.detach().clone()
            else:
                mask = topk_mask(self.weight, self.fan_in, self.priority)
            self.weight = None
            self.priority = None  # only ever used to choose the mask
            self.mask = mask
            self.projected_version = None

    @torch.no_grad()
    def project_(self) -> None:
        """Clip the real mask to [0, 1] after an optimiser step, keeping at least K positive entries per row
        (the largest ones are raised to a small floor) so that K distinct connections can always be drawn; the
        real-valued ablation's masks are only clipped."""
        if self.weight is None:
            return
        order = None if self.real_valued else priority_order(self.priority[None])
        project_masks_([self.weight], self.fan_in, order)
        self.projected_version = self.weight._version

    def project_if_stale_(self) -> None:
        """:meth:`project_` if the real mask changed since it was last projected (a host-side check, no op).

        This makes the projection of Algorithm 1 lazy: an optimiser step writes the real mask in place (bumping its
        version counter) and whatever reads it next — a forward pass, :meth:`binary_mask`, :meth:`freeze`,
        ``state_dict`` — projects it first, so no training loop has to call anything after its optimiser step.
        """
        if self.stale:
            self.project_()

    def extra_repr(self) -> str:
        return (
            f"blocks={self.num_blocks}, inputs={self.num_inputs}, fan_in={self.fan_in}, "
            f"connectivity={self.connectivity.value}, frozen={self.frozen}"
        )


def _running_eagerly() -> bool:
    """False while torch.compile or torch.jit trace the forward pass (their graphs read no version counters; under
    torch.compile the model's fusion hook projects outside the graph)."""
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing())


def _project_before_saving(module: BranchGates, prefix: str, keep_vars: bool) -> None:
    module.project_if_stale_()


def aggregate_branches(mask: Tensor, outputs: list[Tensor], num_blocks: int) -> list[Tensor]:
    """x_j = Σ_k m_jk · y_k for the ``num_blocks`` blocks j.

    Written term by term so that a traced graph shows each gate product (constant folding then removes the
    0-gated terms and turns the 1-gated ones into plain additions). The block count is passed in, not read
    from the mask, so the loop is static under torch.fx tracing.
    """
    inputs = []
    for j in range(num_blocks):
        x = mask[j, 0] * outputs[0]
        for k in range(1, len(outputs)):
            x = x + mask[j, k] * outputs[k]
        inputs.append(x)
    return inputs


def aggregate_branches_stacked(mask: Tensor, outputs: list[Tensor]) -> list[Tensor]:
    """Same as :func:`aggregate_branches` as one matrix product, x = M·[y_1; …; y_C], for training.

    The outputs are stacked in their own memory order (channels-last stays channels-last), so the product
    reads and writes them without layout copies and each x_j comes back as a view in the same layout.
    """
    y = outputs[0]
    order = sorted(range(y.dim()), key=lambda d: -y.stride(d))  # dims from outermost to innermost in memory
    if order != list(range(y.dim())):
        outputs = [o.permute(order) for o in outputs]
    stacked = torch.stack(outputs)
    mixed = torch.mm(mask.to(stacked.dtype), stacked.view(len(outputs), -1)).view(stacked.shape).unbind(0)
    if order == list(range(y.dim())):
        return list(mixed)
    inverse = sorted(range(y.dim()), key=order.__getitem__)
    return [x.permute(inverse) for x in mixed]
