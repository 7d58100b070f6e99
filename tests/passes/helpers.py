from collections.abc import Callable

import torch
from torch import fx, nn

from prunex.nn.dgconv import DGConv2d
from prunex.passes.graph import finish
from prunex.passes.protocol import GraphPass


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so BN folding has something to get wrong."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.rand(m.num_features, generator=g) - 0.1)
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.2 * torch.rand(m.num_features, generator=g) - 0.1)
    return model


def set_dgconv_gates(model: nn.Module, patterns) -> None:
    """Set each DGConv's binary gates from ``patterns`` (one list per layer, in module order)."""
    layers = [m for m in model.modules() if isinstance(m, DGConv2d)]
    for layer, gates in zip(layers, patterns, strict=True):
        with torch.no_grad():
            layer.gate.copy_(torch.tensor([1e-8 if g else -1e-8 for g in gates]))


def random_dgconv_gates(model: nn.Module, seed: int = 1) -> nn.Module:
    """Every DGConv's gates at random signs: a random grouping in every layer."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, DGConv2d):
            with torch.no_grad():
                m.gate.copy_(torch.where(torch.randint(0, 2, (m.num_gates,), generator=g).bool(), 1e-8, -1e-8))
    return model


class FunctionPass(GraphPass):
    """A pass made from a function (for tests that need a pass that does something particular, e.g. breaks)."""

    def __init__(self, name: str, fn: Callable[[fx.GraphModule], fx.GraphModule]) -> None:
        self.name, self.fn = name, fn

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        return self.fn(gm)


def bias_breaker(layer: str) -> FunctionPass:
    """A pass named "broken" that adds 1 to ``layer``'s bias: it changes what the network computes."""

    def broken(gm: fx.GraphModule) -> fx.GraphModule:
        module = gm.get_submodule(layer)
        module.bias = nn.Parameter(module.bias.detach() + 1.0, requires_grad=False)  # passes replace, never write
        return finish(gm)

    return FunctionPass("broken", broken)
