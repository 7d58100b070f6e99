"""The verifying pass runner: run each pass, verify it numerically against the graph before it, record a report.

After every pass the new module and the previous one see the same calibration batch (float32, TF32 off); the
pass is accepted only if max |Δ| ≤ tol · max |reference| and top-1 agreement is 100 %. A pass that breaks
equivalence raises :class:`PassVerificationError` carrying a diff report that names the pass and the first
layer whose output moved. A pass that changed nothing (same graph, same tensors) is recorded without running it.

Memory: the runner holds the reference outputs, not a copy of every model. What it keeps of the module before a
pass (to name the first diverging layer, or for the whole-network choice) is the graph and module tree sharing
every tensor with the live module, which is sound because passes replace tensors instead of writing into them;
the runner checks that (version counters) and raises :class:`InPlaceWriteError` for a pass that did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import fx

from prunex.artifacts.compression_report import PassRecord
from prunex.artifacts.errors import NotEquivalentError
from prunex.passes.graph import (
    call_sites,
    copy_sharing_tensors,
    count_macs,
    count_params,
    module_states,
    release_tensors,
    tensor_versions,
    written_in_place,
)
from prunex.passes.protocol import GraphPass
from prunex.runtime.comparison import compare, exact_float32, scale_of


class PassVerificationError(NotEquivalentError):
    """A pass changed what the network computes; ``report`` holds the diff."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


# What a pass that changed nothing is recorded with: no error against the graph before it, no layer touched.
UNCHANGED = dict(max_abs_err=0.0, max_rel_err=0.0, top1_agreement=1.0, added=[], removed=[], changed=[])


class InPlaceWriteError(RuntimeError):
    """A pass wrote into a tensor it did not create (which the module before it, and the user's model, share)."""


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
        self.output: torch.Tensor | None = None  # the last module's output on the calibration batch, after run

    def measure(
        self,
        name: str,
        gm: fx.GraphModule,
        reference: torch.Tensor | None,
        seconds: float = 0.0,
        before: fx.GraphModule | None = None,
        out: torch.Tensor | None = None,
    ) -> tuple[PassRecord, torch.Tensor]:
        """``gm``'s record against ``reference``; ``out``: its output on the calibration batch, when known."""
        if out is None:
            with exact_float32(), torch.no_grad():
                out = gm(self.x)
        errs = (
            compare(reference, out)
            if reference is not None
            else {"max_abs_err": 0.0, "max_rel_err": 0.0, "top1_agreement": 1.0, "output_scale": scale_of(out)}
        )
        record = PassRecord(name, **errs, params=count_params(gm), macs=count_macs(gm, self.x), seconds=seconds)
        if before is not None:
            old, new = set(call_sites(before)), set(call_sites(gm))
            record.added, record.removed = sorted(new - old), sorted(old - new)
            states_old, states_new = module_states(before), module_states(gm)
            record.changed = sorted(t for t in old & new if not states_new[t].same(states_old.get(t)))
        return record, out

    def run(
        self, gm: fx.GraphModule, passes: Sequence[GraphPass], reference: torch.Tensor | None = None
    ) -> fx.GraphModule:
        """Run each pass on the output of the one before, verify it against it; the last module is returned.
        ``reference``: the output of the model ``gm`` was traced from on the calibration batch (then the first
        pass is verified against the model itself, tracing included, and ``gm`` is not run)."""
        record, reference = self.measure("frozen", gm, None, out=reference)
        self._record(record)
        for graph_pass in passes:
            before = copy_sharing_tensors(gm)
            versions = tensor_versions(before)  # holds the tensors only until the check below
            tic = time.perf_counter()
            result = graph_pass(gm)
            seconds = time.perf_counter() - tic
            written = written_in_place(versions)
            if written:
                raise InPlaceWriteError(
                    f"pass {graph_pass.name!r} wrote into {written} tensor(s) in place; passes must "
                    "replace a tensor, since the module before the pass (and the user's model) share it"
                )
            gm = result.graph_module
            if result.modified:
                record, out = self.measure(graph_pass.name, gm, reference, seconds, before)
            else:  # the same graph over the same tensors computes the same outputs
                record, out = (
                    replace(record, name=graph_pass.name, seconds=seconds, **UNCHANGED),
                    reference,
                )
            record.modified = result.modified
            self._record(record)
            self._check(record, before, gm)
            reference = out
            if graph_pass.name in self.keep:
                self.kept[graph_pass.name] = copy_sharing_tensors(gm)
            release_tensors(before)  # a GraphModule is a reference cycle: drop what the pass replaced now, not at gc
        self.output = reference
        return gm

    def _record(self, record: PassRecord) -> None:
        self.records.append(record)
        if self.on_pass:
            self.on_pass(record)

    def _check(self, record: PassRecord, before: fx.GraphModule, gm: fx.GraphModule) -> None:
        """Raise :class:`PassVerificationError` with its diff report if ``record`` is not within tolerance."""
        if record.max_rel_err <= self.tolerance and record.top1_agreement >= 1.0:
            return
        layer = first_divergence(before, gm, self.x, self.tolerance)
        report = {
            "failed_pass": record.name,
            "first_diverging_layer": layer,
            "tolerance": self.tolerance,
            "passes": [r.as_dict() for r in self.records],
        }
        raise PassVerificationError(
            f"pass {record.name!r} changed the network's output: max |Δ| = {record.max_abs_err:.3g} "
            f"({record.max_rel_err:.3g} of the output scale, tolerance {self.tolerance:g}), top-1 agreement "
            f"{100 * record.top1_agreement:.2f}%; first diverging layer: {layer}",
            report,
        )
