"""Common-subexpression elimination: identical computations on identical inputs run once.

With frozen masks, MaskConnect blocks that read the same set of branches get identical input sums (and, with
K = C, a whole module reads one sum); CSE makes them one node so the branch merge can see the shared input.
Calls of the same module on the same node are merged too (modules are deterministic in eval mode).
"""

from __future__ import annotations

from torch import fx

from prunex.passes.graph import finish
from prunex.passes.protocol import GraphPass

PURE_OPS = ("call_function", "call_method", "call_module", "get_attr")


def _key(node: fx.Node):
    def freeze(a):
        if isinstance(a, (list, tuple)):
            return (type(a).__name__, tuple(freeze(x) for x in a))
        if isinstance(a, dict):
            return tuple(sorted((k, freeze(v)) for k, v in a.items()))
        if isinstance(a, slice):
            return ("slice", a.start, a.stop, a.step)
        return a

    return (node.op, node.target, freeze(node.args), freeze(node.kwargs))


class EliminateCommonSubexpressions(GraphPass):
    """Merge identical pure nodes on identical inputs."""

    name = "eliminate_common_subexpressions"

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        seen: dict = {}
        for node in list(gm.graph.nodes):
            if node.op not in PURE_OPS or node.is_impure():
                continue
            try:
                key = _key(node)
                hash(key)
            except TypeError:  # unhashable constant argument: leave the node alone
                continue
            if key in seen:
                node.replace_all_uses_with(seen[key])
                gm.graph.erase_node(node)
            else:
                seen[key] = node
        return finish(gm)
