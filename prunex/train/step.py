"""One training step as ``prunex train`` runs it, with nothing in it that waits for the device.

forward (the model fuses its gates itself: :func:`~prunex.nn.fuse_gates`) → cross-entropy (→ DGConv's resource
constraint while the gates learn) → backward → SGD step → MaskConnect mask projection. Mixed precision is bf16
autocast where the device has it (no loss scaling, so no found-inf check that reads a value back) and fp16 with a
gradient scaler otherwise. ``compile`` runs the model through ``torch.compile``, which fuses the gates' elementwise
work itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from prunex.nn.fused_gates import fuse_gates
from prunex.nn.gates import branch_gate_modules, dgconv_modules
from prunex.train.resource import constrained_loss


def autocast_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the device computes in it (no loss scaling needed), else fp16."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def param_groups(
    model: nn.Module, *, lr: float, gate_lr: float, weight_decay: float, momentum: float, nesterov: bool
) -> list[dict[str, Any]]:
    """SGD parameter groups: the weights; DGConv gates (same optimiser, no decay: their sign is what matters);
    MaskConnect real masks (plain gradient steps, then clipping: Algorithm 1). ``base_lr`` is each group's LR
    before the schedule."""
    dg = [m.gate for _, m in dgconv_modules(model) if m.num_gates]
    masks = [m.weight for _, m in branch_gate_modules(model) if m.weight is not None]
    gate_ids = {id(p) for p in dg + masks}
    weights = [p for p in model.parameters() if id(p) not in gate_ids]
    nesterov = nesterov and momentum > 0
    groups = [dict(params=weights, base_lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)]
    groups[0]["name"] = "weights"
    if dg:
        groups.append(
            dict(
                params=dg, base_lr=gate_lr, weight_decay=0.0, momentum=momentum, nesterov=nesterov, name="dgconv_gates"
            )
        )
    if masks:
        groups.append(
            dict(params=masks, base_lr=gate_lr, weight_decay=0.0, momentum=0.0, nesterov=False, name="branch_masks")
        )
    for g in groups:
        g["lr"] = g["base_lr"]
    return groups


def sgd(groups: list[dict[str, Any]]) -> torch.optim.SGD:
    """SGD over parameter groups with the multi-tensor (foreach) update on every device, as CUDA uses by default."""
    return torch.optim.SGD(groups, lr=groups[0]["lr"], foreach=True)


class TrainStep:
    """``step(x, y, optimizer, learn_gates=...)`` → (loss, logits), both still on the device.

    ``model`` is the module whose gates are fused and projected; ``net`` what is called (``model`` itself or its
    DistributedDataParallel wrapper). ``budget`` is DGConv's o (None: no constraint) with exponent ``alpha``.
    """

    def __init__(
        self,
        model: nn.Module,
        net: nn.Module | None = None,
        *,
        amp: bool = False,
        budget: float | None = None,
        alpha: float = -0.02,
        compile: bool = False,
    ) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.use_amp = amp and self.device.type == "cuda"
        self.amp_dtype = autocast_dtype(self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.budget, self.alpha = budget, alpha
        self.gates = fuse_gates(model)  # the model's own fusion (installed here for a model prunex did not build)
        net = net if net is not None else model
        self.net = torch.compile(net) if compile else net

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            return self.net(x)

    def __call__(
        self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer, *, learn_gates: bool = True
    ) -> tuple[Tensor, Tensor]:
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            logits = self.net(x)
            loss = nn.functional.cross_entropy(logits, y)
        objective = loss
        if self.budget is not None and learn_gates:
            objective = constrained_loss(loss, self.gates.complexity(), self.budget, self.alpha)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(objective).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        self.gates.project_()
        return loss, logits
