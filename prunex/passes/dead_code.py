"""Dead-block elimination: drop every computation whose result no longer reaches the output.

After gate folding, a MaskConnect block that no block of the next module reads has no users; removing it
leaves the blocks that only fed it without users too, so one backward sweep removes the whole cascade. Exact
by construction: only nodes with no path to the output are removed.
"""

from __future__ import annotations

from torch import fx

from prunex.passes.graph import finish
from prunex.passes.protocol import GraphPass


class EliminateDeadBlocks(GraphPass):
    """Remove every node with no path to the output."""

    name = "eliminate_dead_blocks"

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        gm.graph.eliminate_dead_code()  # reverse topological sweep: cascades through chains of unused nodes
        return finish(gm)
