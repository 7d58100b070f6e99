"""Latency-aware choice of each grouped conv's realisation: learned G, any coarser G' dividing G, dense, or split.

Every candidate is exact (coarser groups hold zero blocks; a split is the same blocks as separate convs), so the
pass changes only speed; the runner still verifies it like every other pass.
"""

from __future__ import annotations

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from prunex.passes.graph import finish, fresh_name, is_module, module_of, own_module
from prunex.passes.tuning import SplitConv, Tuner, coarsen, conv_candidates, conv_signature


def propagate_shapes(gm: fx.GraphModule, example_shape: tuple[int, ...]) -> None:
    """Record every node's output shape (node.meta['tensor_meta']) for one sample of ``example_shape``."""
    ShapeProp(gm).propagate(torch.zeros(1, *example_shape))


def input_shape(node: fx.Node, batch: int) -> tuple[int, ...]:
    src = node.args[0]
    return (batch, *tuple(src.meta["tensor_meta"].shape)[1:])


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


def choose_conv_realisations(gm: fx.GraphModule, *, tuner: Tuner, example_shape: tuple[int, ...]) -> fx.GraphModule:
    propagate_shapes(gm, example_shape)
    for node in list(gm.graph.nodes):
        if not is_module(gm, node, nn.Conv2d) or module_of(gm, node).groups == 1:
            continue
        conv = module_of(gm, node)
        shape = input_shape(node, tuner.target.batch)
        learned = f"groups={conv.groups}"
        chosen = tuner.choose(
            "conv",
            str(node.target),
            f"{conv.groups} groups",
            conv_signature(conv, shape),
            shape,
            conv_candidates(conv),
            prefer=learned,
        )
        if chosen == "split":
            _split(gm, node, conv)
        elif chosen != learned:
            groups = 1 if chosen == "dense" else int(chosen.split("=")[1])
            coarse = coarsen(own_module(gm, node), groups)
            gm.add_submodule(node.target, coarse)
    return finish(gm)
