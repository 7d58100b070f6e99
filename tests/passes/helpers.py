import torch
from torch import nn

from prunex.nn.dgconv import DGConv2d


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
