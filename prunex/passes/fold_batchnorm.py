"""BN folding: conv → BN (eval) becomes one conv, W' = W·γ/σ, b' = (b − μ)·γ/σ + β, per output channel.

Applies to grouped convs and to DGConv2d (U ⊙ (s·W) = s·(U ⊙ W)) whose output feeds the BN alone — also through
a channel gather y = conv(x)[:, p] between them (a lowered DGConv's output order): BN's channel j reads conv
channel p[j], so the conv folds BN's vectors taken at p⁻¹, and the gather then moves the folded channels.
"""

from __future__ import annotations

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from prunex.passes.graph import finish, is_module, module_of, sole_user
from prunex.passes.permutations import inverse_permutation
from prunex.passes.propagate_permutations import is_gather
from prunex.passes.protocol import GraphPass


def _foldable(gm: fx.GraphModule, node: fx.Node) -> tuple[fx.Node, tuple[int, ...] | None] | None:
    """(the BN that alone consumes conv ``node``, the order p of the gather between them or None), if any."""
    if not is_module(gm, node, nn.Conv2d):
        return None
    bn, gather = sole_user(node), None
    if bn is not None and is_gather(bn) and bn.args[0] is node:
        gather, bn = bn, sole_user(bn)
    if bn is None or not is_module(gm, bn, nn.BatchNorm2d) or bn.args[0] is not (gather or node):
        return None
    m = module_of(gm, bn)
    order = None if gather is None else tuple(gm.get_buffer(gather.args[2].target).tolist())
    return (bn, order) if m.track_running_stats and m.running_mean is not None else None


def _reordered(bn: nn.BatchNorm2d, order: torch.Tensor) -> nn.BatchNorm2d:
    """A BN whose channel k is ``bn``'s channel ``order[k]``."""
    out = nn.BatchNorm2d(bn.num_features, bn.eps, affine=bn.affine).eval()
    for name in ("weight", "bias", "running_mean", "running_var"):
        value = getattr(bn, name)
        if value is not None:
            setattr(out, name, type(value)(value.detach()[order]) if isinstance(value, nn.Parameter) else value[order])
    return out


class FoldBatchNorm(GraphPass):
    """A conv module called at several sites (a shared projection) is folded once, and only if every site is
    followed by the same BN (through the same gather), so that no weight is duplicated."""

    name = "fold_batchnorm"

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        sites: dict[str, list[fx.Node]] = {}
        for node in gm.graph.nodes:
            if is_module(gm, node, nn.Conv2d):
                sites.setdefault(node.target, []).append(node)
        for target, convs in sites.items():
            found = [_foldable(gm, c) for c in convs]
            if any(f is None for f in found) or len({(bn.target, order) for bn, order in found}) != 1:
                continue
            bn, order = found[0]
            norm = module_of(gm, bn)
            if order is not None:
                norm = _reordered(norm, inverse_permutation(torch.tensor(order)))
            gm.add_submodule(target, fuse_conv_bn_eval(gm.get_submodule(target), norm))
            for bn, _ in found:
                bn.replace_all_uses_with(bn.args[0])
                gm.graph.erase_node(bn)
        return finish(gm)
