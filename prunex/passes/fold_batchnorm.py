"""BN folding: conv → BN (eval) becomes one conv, W' = W·γ/σ, b' = (b − μ)·γ/σ + β, per output channel.

Applies to grouped convs and to DGConv2d (U ⊙ (s·W) = s·(U ⊙ W)) whose output feeds the BN alone.
"""

from __future__ import annotations

from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from prunex.passes.graph import finish, is_module, module_of
from prunex.passes.protocol import GraphPass


def _foldable(gm: fx.GraphModule, node: fx.Node) -> fx.Node | None:
    """The BN node that alone consumes conv ``node``, if any."""
    if not is_module(gm, node, nn.Conv2d) or len(node.users) != 1:
        return None
    (bn,) = node.users
    if not is_module(gm, bn, nn.BatchNorm2d) or bn.args[0] is not node:
        return None
    m = module_of(gm, bn)
    return bn if m.track_running_stats and m.running_mean is not None else None


class FoldBatchNorm(GraphPass):
    """A conv module called at several sites (a shared projection) is folded once, and only if every site is
    followed by the same BN, so that no weight is duplicated."""

    name = "fold_batchnorm"

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        sites: dict[str, list[fx.Node]] = {}
        for node in gm.graph.nodes:
            if is_module(gm, node, nn.Conv2d):
                sites.setdefault(node.target, []).append(node)
        for target, convs in sites.items():
            bns = [_foldable(gm, c) for c in convs]
            if any(b is None for b in bns) or len({b.target for b in bns}) != 1:
                continue
            fused = fuse_conv_bn_eval(gm.get_submodule(target), module_of(gm, bns[0]))
            gm.add_submodule(target, fused)
            for bn in bns:
                bn.replace_all_uses_with(bn.args[0])
                gm.graph.erase_node(bn)
        return finish(gm)
