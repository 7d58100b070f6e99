"""DGConv → grouped conv: y = gather(GroupConv_G(gather(x, in_order)), inverse(out_order)).

With π the DGConv permutation, P U Pᵀ = I_G ⊗ 1, so DGConv(x) = P_outᵀ · GroupConv_G(P_in x) with the diagonal
blocks of P_out (U ⊙ W) P_inᵀ (docs/design.md). Contiguous group patterns need no gather; the others get explicit
``index_select`` nodes that :mod:`prunex.passes.propagate_permutations` then removes wherever a layer can absorb them.
"""

from __future__ import annotations

import torch
from torch import fx

from prunex.nn.dgconv import DGConv2d
from prunex.passes.graph import add_buffer, finish, is_module, module_of, replace_module
from prunex.passes.permutations import inverse_permutation, is_identity
from prunex.passes.protocol import GraphPass


def gather_channels(gm: fx.GraphModule, x: fx.Node, order: torch.Tensor, base: str, conv: fx.Node, after: bool):
    """Insert ``torch.index_select(x, 1, order)`` just before (or after) the ``conv`` node."""
    index = add_buffer(gm, f"{base}_order", order, before=conv)
    with gm.graph.inserting_after(conv) if after else gm.graph.inserting_before(conv):
        return gm.graph.call_function(torch.index_select, (x, 1, index))


class LowerDGConv(GraphPass):
    """Every DGConv2d → gathers around a real grouped conv."""

    name = "lower_dgconv"

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        for node in list(gm.graph.nodes):
            if not is_module(gm, node, DGConv2d):
                continue
            layer = module_of(gm, node)
            conv, in_order, out_order = layer.to_grouped_conv()
            name = str(node.target)
            replace_module(gm, node, conv.eval())
            identity_in, identity_out = is_identity(in_order), is_identity(out_order)
            if not identity_in:
                x = node.args[0]
                gathered = gather_channels(gm, x, in_order, name, node, after=False)
                node.args = (gathered, *node.args[1:])
            if not identity_out:
                users = list(node.users)
                restored = gather_channels(gm, node, inverse_permutation(out_order), f"{name}_out", node, after=True)
                for user in users:
                    user.args = fx.node.map_arg(user.args, lambda n, node=node, r=restored: r if n is node else n)
        return finish(gm)
