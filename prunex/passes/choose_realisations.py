"""Latency-aware choice of each grouped conv's realisation: learned G, any coarser G' dividing G, dense, or split.

Every candidate is exact (coarser groups hold zero blocks; a split is the same blocks as separate convs), so the
pass changes only speed; the runner still verifies it like every other pass.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from prunex.passes.conv_realisations import ConvRealisation, SplitConv, coarsen, conv_candidates, conv_signature
from prunex.passes.graph import finish, fresh_name, input_shape, is_module, module_of, own_module, propagate_shapes
from prunex.passes.protocol import GraphPass
from prunex.passes.tuning import DecisionKind, Tuner


def _split(gm: fx.GraphModule, node: fx.Node, conv: nn.Conv2d) -> None:
    split = SplitConv(conv)
    base = fresh_name(gm, f"{node.target}_split")
    parts = []
    with gm.graph.inserting_before(node):
        for i, part in enumerate(split.parts):
            gm.add_submodule(f"{base}.{i}", part.eval())
            piece = gm.graph.call_function(torch.narrow, (node.args[0], 1, i * split.si, split.si))
            parts.append(gm.graph.call_module(f"{base}.{i}", (piece,)))
        joined = gm.graph.call_function(torch.cat, (parts, 1))
    node.replace_all_uses_with(joined)
    gm.graph.erase_node(node)


class ChooseConvRealisations(GraphPass):
    """Each grouped conv becomes the realisation that measures fastest on the tuner's target (the learned one
    unless another is more than 3 % faster); ``example_shape`` is the input's (C, H, W)."""

    name = "choose_conv_realisations"

    def __init__(self, tuner: Tuner, example_shape: tuple[int, ...]) -> None:
        self.tuner, self.example_shape = tuner, example_shape

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        propagate_shapes(gm, self.example_shape)
        for node in list(gm.graph.nodes):
            if not is_module(gm, node, nn.Conv2d) or module_of(gm, node).groups == 1:
                continue
            conv = module_of(gm, node)
            shape = input_shape(node, self.tuner.target.batch)
            learned = ConvRealisation(conv.groups)
            chosen = self.tuner.choose(
                DecisionKind.CONV,
                str(node.target),
                f"{conv.groups} groups",
                conv_signature(conv, shape),
                shape,
                conv_candidates(conv),
                prefer=learned,
            )
            if chosen.split:
                _split(gm, node, conv)
            elif chosen != learned:
                gm.add_submodule(node.target, coarsen(own_module(gm, node), chosen.groups))
        return finish(gm)
