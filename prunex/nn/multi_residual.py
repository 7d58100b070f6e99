"""Multi-residual block (Abdi & Nahavandi, "Multi-Residual Networks"): k residual functions on one input."""

from __future__ import annotations

from torch import Tensor, nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

from prunex.nn.block_batching import can_batch_sequentials, sequentials, sum_blocks

BLOCK_KINDS = ("basic", "bottleneck")


class PreActFunction(nn.Module):
    """Pre-activation residual function.

    basic:      f(x) = conv3×3(ReLU(BN(conv3×3(ReLU(BN(x))))))
    bottleneck: f(x) = conv1×1(ReLU(BN(conv3×3(ReLU(BN(conv1×1(ReLU(BN(x)))))))))

    With ``preact=False`` the leading BN-ReLU is left out (a dimension-increasing block shares one). A bottleneck
    strides in its 3×3 conv, or with ``stride_first`` in its first 1×1 (He et al.'s pre-activation CIFAR code).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        stride: int = 1,
        kind: str = "basic",
        preact: bool = True,
        stride_first: bool = False,
    ):
        super().__init__()
        if kind not in BLOCK_KINDS:
            raise ValueError(f"block must be one of {BLOCK_KINDS}, got {kind!r}")
        layers: list[nn.Module] = [nn.BatchNorm2d(in_ch), nn.ReLU()] if preact else []
        if kind == "basic":
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(),
                nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            ]
        else:
            width = out_ch // 4
            first, middle = (stride, 1) if stride_first else (1, stride)
            layers += [
                nn.Conv2d(in_ch, width, 1, stride=first, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, stride=middle, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, out_ch, 1, bias=False),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class MultiResidualBlock(nn.Module):
    """y = x + Σ_{i=1..k} f_i(x).

    A dimension-increasing block (width or stride changes) pre-activates once, h = ReLU(BN(x)), and computes
    y = P(h) + Σ_i f_i(h) with a 1×1 projection P, as the reference (Lua) implementation does.

    ``preact=False``: the input is already activated (the first block after an ImageNet stem's BN-ReLU, He et al.'s
    "no_preact"), so neither the block nor its functions pre-activate. ``stride_first``: see :class:`PreActFunction`.

    In training the k functions run as one grouped computation (:func:`~prunex.nn.block_batching.sequentials`).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        k: int,
        stride: int = 1,
        kind: str = "basic",
        preact: bool = True,
        stride_first: bool = False,
    ) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k (residual functions per block) must be >= 1, got {k}")
        self.increases_dim = in_ch != out_ch or stride != 1
        self.preact: nn.Module | None = None
        if self.increases_dim:
            if preact:
                self.preact = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU())
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
        own_preact = preact and not self.increases_dim
        self.functions = nn.ModuleList(
            PreActFunction(in_ch, out_ch, stride=stride, kind=kind, preact=own_preact, stride_first=stride_first)
            for _ in range(k)
        )
        self.function_ids = list(range(k))  # which of the k functions this module holds (all but under sharding)
        self.branch_group = None  # a prunex.nn.branch_parallel.BranchGroup when the functions are split over ranks

    def forward(self, x: Tensor) -> Tensor:
        if self.increases_dim:
            if self.preact is not None:
                x = self.preact(x)
            y = self.shortcut(x)
        else:
            y = x
        if self.branch_group is not None:  # this rank's functions; the others' partial sums come from the group
            return y + self.branch_group.sum_out(self._sum_functions(self.branch_group.copy_in(x)))
        bodies = [f.body for f in self.functions]
        if self.training and len(bodies) > 1 and not is_fx_symbolic_tracing() and can_batch_sequentials(bodies):
            return y + sum_blocks(sequentials(bodies, x), len(bodies))
        for f in self.functions:
            y = y + f(x)
        return y

    def _sum_functions(self, x: Tensor) -> Tensor:
        """Σ of this module's functions (grouped in training, as :meth:`forward` does)."""
        bodies = [f.body for f in self.functions]
        if self.training and len(bodies) > 1 and can_batch_sequentials(bodies):
            return sum_blocks(sequentials(bodies, x), len(bodies))
        total = self.functions[0](x)
        for f in self.functions[1:]:
            total = total + f(x)
        return total
