"""One protocol for every compiler pass: torch.fx's pass infrastructure (``PassBase`` → ``PassResult``).

A pass is a :class:`GraphPass`: calling it on a GraphModule runs ``requires`` → ``call`` → ``ensures`` (PassBase)
and returns ``PassResult(graph_module, modified)``. Subclasses give their report ``name`` and implement
:meth:`GraphPass.rewrite`; ``modified`` is decided here, the same way for all: the graph's text or a called
module's parameters changed. The verifying runner (:class:`~prunex.passes.runner.PassRunner`) and the tuned passes
take passes of this one shape.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from torch import fx
from torch.fx.passes.infra.pass_base import PassBase, PassResult

from prunex.passes.graph import module_fingerprints

__all__ = ["GraphPass", "PassResult", "graph_fingerprint"]


def graph_fingerprint(gm: fx.GraphModule) -> tuple[str, dict[str, int]]:
    """What a pass can change: the graph (as text) and each called module's type, shapes and values."""
    return str(gm.graph), module_fingerprints(gm)


class GraphPass(PassBase):
    """A rewrite of a GraphModule into one that computes the same function (the runner checks that it does)."""

    name: ClassVar[str]  # the pass's name in reports and diff reports

    def call(self, graph_module: fx.GraphModule) -> PassResult:
        before = graph_fingerprint(graph_module)
        gm = self.rewrite(graph_module)
        return PassResult(gm, graph_fingerprint(gm) != before)

    @abstractmethod
    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        """The rewritten module (``gm`` itself, edited in place, or a new one)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
