"""One protocol for every compiler pass: torch.fx's pass infrastructure (``PassBase`` → ``PassResult``).

A pass is a :class:`GraphPass`: calling it on a GraphModule runs ``requires`` → ``call`` → ``ensures`` (PassBase)
and returns ``PassResult(graph_module, modified)``. Subclasses give their report ``name`` and implement
:meth:`GraphPass.rewrite`; ``modified`` is decided here, the same way for all: the graph's text changed, or a
called module or one of its tensors was replaced (passes never write into a tensor in place; the runner checks).
The verifying runner (:class:`~prunex.passes.runner.PassRunner`) and the tuned passes take passes of this one shape.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, NamedTuple

from torch import fx
from torch.fx.passes.infra.pass_base import PassBase, PassResult

from prunex.passes.graph import ModuleState, module_states

__all__ = ["GraphFingerprint", "GraphPass", "PassResult", "graph_fingerprint"]


class GraphFingerprint(NamedTuple):
    """What a pass can change: the graph (as text) and each called module (type, tensors, versions)."""

    text: str
    modules: dict[str, ModuleState]

    def same(self, other: GraphFingerprint) -> bool:
        return (
            self.text == other.text
            and self.modules.keys() == other.modules.keys()
            and all(state.same(other.modules[t]) for t, state in self.modules.items())
        )


def graph_fingerprint(gm: fx.GraphModule) -> GraphFingerprint:
    return GraphFingerprint(str(gm.graph), module_states(gm))


class GraphPass(PassBase):
    """A rewrite of a GraphModule into one that computes the same function (the runner checks that it does)."""

    name: ClassVar[str]  # the pass's name in reports and diff reports

    def call(self, graph_module: fx.GraphModule) -> PassResult:
        before = graph_fingerprint(graph_module)
        gm = self.rewrite(graph_module)
        return PassResult(gm, not graph_fingerprint(gm).same(before))

    @abstractmethod
    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        """The rewritten module (``gm`` itself, edited in place, or a new one)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
