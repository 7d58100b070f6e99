"""The verifying pass runner: run each pass, verify it numerically against the graph before it, record a report.

After every pass the new module and the previous one see the same calibration batch (float32, TF32 off); the
pass is accepted only if max |Δ| ≤ tol · max |reference| and top-1 agreement is 100 %. A pass that breaks
equivalence raises :class:`PassVerificationError` carrying a diff report that names the pass and the first
layer whose output moved.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import fx

from prunex.artifacts.errors import NotEquivalentError
from prunex.passes.graph import call_sites, count_macs, count_params, module_fingerprints
from prunex.passes.protocol import GraphPass
from prunex.runtime.comparison import compare, exact_float32


@dataclass
class PassRecord:
    name: str
    max_abs_err: float
    max_rel_err: float
    top1_agreement: float
    params: int
    macs: int
    seconds: float
    modified: bool = True  # the pass's PassResult.modified (the frozen graph: True)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PassVerificationError(NotEquivalentError):
    """A pass changed what the network computes; ``report`` holds the diff."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def _node_outputs(gm: fx.GraphModule, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every node's output by node name (for locating the layer a faulty pass broke)."""
    outputs: dict[str, torch.Tensor] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if isinstance(result, torch.Tensor):
                outputs[n.name] = result
            return result

    with torch.no_grad():
        Recorder(gm).run(x)
    return outputs


def first_divergence(before: fx.GraphModule, after: fx.GraphModule, x: torch.Tensor, tol: float) -> str | None:
    """The first node of ``after`` (in graph order) whose output differs from the same-named node of ``before``."""
    ref, new = _node_outputs(before, x), _node_outputs(after, x)
    for node in after.graph.nodes:
        a, b = ref.get(node.name), new.get(node.name)
        if a is None or b is None or a.shape != b.shape:
            continue
        if float((a - b).abs().max()) > tol * float(a.abs().max().clamp_min(1e-12)):
            return node.target if node.op == "call_module" else node.name
    return None


class PassRunner:
    """Runs passes in order on a GraphModule, verifying each against its predecessor."""

    def __init__(
        self,
        calibration: torch.Tensor,
        *,
        tolerance: float = 1e-4,
        on_pass: Callable[[PassRecord], None] | None = None,
        keep: Sequence[str] = (),
    ) -> None:
        self.x = calibration.float()
        self.tolerance = tolerance
        self.records: list[PassRecord] = []
        self.on_pass = on_pass
        self.keep = set(keep)  # names of passes whose verified output is kept (a copy) in ``self.kept``
        self.kept: dict[str, fx.GraphModule] = {}

    def measure(
        self,
        name: str,
        gm: fx.GraphModule,
        reference: torch.Tensor | None,
        seconds: float = 0.0,
        before: fx.GraphModule | None = None,
    ) -> tuple[PassRecord, torch.Tensor]:
        with exact_float32(), torch.no_grad():
            out = gm(self.x)
        errs = (
            compare(reference, out)
            if reference is not None
            else {"max_abs_err": 0.0, "max_rel_err": 0.0, "top1_agreement": 1.0}
        )
        record = PassRecord(name, **errs, params=count_params(gm), macs=count_macs(gm, self.x), seconds=seconds)
        if before is not None:
            old, new = set(call_sites(before)), set(call_sites(gm))
            record.added, record.removed = sorted(new - old), sorted(old - new)
            fp_old, fp_new = module_fingerprints(before), module_fingerprints(gm)
            record.changed = sorted(t for t in old & new if fp_old.get(t) != fp_new.get(t))
        return record, out

    def run(self, gm: fx.GraphModule, passes: Sequence[GraphPass]) -> fx.GraphModule:
        """Run each pass on the output of the one before, verify it against it; the last module is returned."""
        record, reference = self.measure("frozen", gm, None)
        self.records.append(record)
        if self.on_pass:
            self.on_pass(record)
        for graph_pass in passes:
            name = graph_pass.name
            before = copy.deepcopy(gm)
            tic = time.perf_counter()
            result = graph_pass(gm)
            gm = result.graph_module
            record, out = self.measure(name, gm, reference, time.perf_counter() - tic, before)
            record.modified = result.modified
            self.records.append(record)
            if self.on_pass:
                self.on_pass(record)
            if record.max_rel_err > self.tolerance or record.top1_agreement < 1.0:
                layer = first_divergence(before, gm, self.x, self.tolerance)
                report = {
                    "failed_pass": name,
                    "first_diverging_layer": layer,
                    "tolerance": self.tolerance,
                    "passes": [r.as_dict() for r in self.records],
                }
                raise PassVerificationError(
                    f"pass {name!r} changed the network's output: max |Δ| = {record.max_abs_err:.3g} "
                    f"({record.max_rel_err:.3g} of the output scale, tolerance {self.tolerance:g}), top-1 agreement "
                    f"{100 * record.top1_agreement:.2f}%; first diverging layer: {layer}",
                    report,
                )
            reference = out
            if name in self.keep:
                self.kept[name] = copy.deepcopy(gm)
        return gm
