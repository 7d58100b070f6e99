"""What the gates say at the end of an epoch (logged with the epoch's metrics)."""

from __future__ import annotations

from typing import Any

from torch import nn

from prunex.nn.gates import branch_gate_modules, dgconv_modules
from prunex.train.resource import complexity_summary


def gate_report(model: nn.Module, budget_b: float | None) -> dict[str, Any]:
    """MaskConnect blocks in use per module and the smallest number of inputs a block reads; DGConv groups per
    layer and ζ against the budget o = Σ C² / b."""
    report: dict[str, Any] = {}
    gates = [m for _, m in branch_gate_modules(model)]
    if gates and hasattr(model, "active_blocks"):
        report["active_blocks"] = [sum(a) for a in model.active_blocks()]
        learned = [m.weight for m in gates if m.weight is not None]
        if learned:
            report["mask_min_positive"] = int(min(int((w > 0).sum(1).min()) for w in learned))
    dg = [m for _, m in dgconv_modules(model)]
    if dg:
        report["groups"] = [m.num_groups for m in dg]
        report.update(complexity_summary(model, budget_b))
    return report
