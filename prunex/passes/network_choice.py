"""The last word of the latency-aware lowering: the whole compiled network, timed on the target against the
networks it could have been, and kept only if none of them is faster.

Per-layer choices are measured in isolation; a network is more than its layers (layout changes between them, a
runtime's fusions across them). So the tuned network is timed end to end beside the same network untuned (the
learned structure as compiled), with every grouped conv dense, and with its blocks separate (before
:class:`~prunex.passes.stack_blocks.StackBlocks`), each exact; the tuned one stays unless another is more than
the noise margin faster. The timings go through the tuning cache like every other choice.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

from torch import fx, nn

from prunex.passes.conv_realisations import coarsen
from prunex.passes.graph import finish, module_fingerprints
from prunex.passes.tuning import DecisionKind, Tuner


@dataclass(frozen=True)
class NetworkRealisation:
    """One whole-network candidate: ``tuned``, ``untuned``, ``dense`` or ``separate blocks``."""

    label: str


TUNED, UNTUNED, DENSE, SEPARATE = (NetworkRealisation(x) for x in ("tuned", "untuned", "dense", "separate blocks"))


def densified(gm: fx.GraphModule) -> fx.GraphModule:
    """A copy with every grouped conv as the dense conv holding its blocks on the diagonal (same function)."""
    out = copy.deepcopy(gm)
    for node in out.graph.nodes:
        if node.op == "call_module" and isinstance(out.get_submodule(node.target), nn.Conv2d):
            conv = out.get_submodule(node.target)
            if conv.groups > 1:
                out.add_submodule(node.target, coarsen(conv, 1))
    return finish(out)


def network_signature(gm: fx.GraphModule) -> str:
    """What identifies a compiled network in the tuning cache: its graph and every layer's shapes and values."""
    text = str(gm.graph) + repr(sorted(module_fingerprints(gm).items()))
    return f"network {hashlib.sha256(text.encode()).hexdigest()[:24]}"


def choose_network(
    tuner: Tuner, candidates: dict[NetworkRealisation, fx.GraphModule], example_shape: tuple[int, ...]
) -> NetworkRealisation:
    """The fastest of ``candidates`` on the tuner's target (``tuned`` unless another is more than 3 % faster);
    candidates that are the same network as one before them are not timed twice."""
    distinct: dict[NetworkRealisation, tuple[fx.GraphModule, str]] = {}
    for label, gm in candidates.items():
        sig = network_signature(gm)
        if sig not in {s for _, s in distinct.values()}:
            distinct[label] = (gm, sig)
    shape = (tuner.target.batch, *example_shape)
    signature = " ; ".join(f"{c.label}: {sig}" for c, (_, sig) in distinct.items())
    return tuner.choose(
        DecisionKind.NETWORK,
        "whole network",
        "tuned",
        signature,
        shape,
        {c: (lambda gm=gm: gm) for c, (gm, _) in distinct.items()},
        prefer=TUNED if TUNED in distinct else None,
    )
