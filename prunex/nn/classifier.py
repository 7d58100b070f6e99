"""The classifier every network of the zoo ends with."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class ClassifierHead(nn.Module):
    """logits = W · flatten(pool_p(φ(x))) + b, with φ = ReLU ∘ BN for a pre-activation network (``norm``), else
    the identity, and pool_p the adaptive average pool to p × p (``pool``; 1: the global average): [BN → ReLU →]
    pool → flatten → linear over C·p² features."""

    def __init__(self, in_features: int, num_classes: int, *, norm: bool = False, pool: int = 1) -> None:
        super().__init__()
        if pool < 1:
            raise ValueError(f"the head pools to pool × pool with pool >= 1, got {pool}")
        self.norm = nn.Sequential(nn.BatchNorm2d(in_features), nn.ReLU()) if norm else None
        self.pool = pool
        self.fc = nn.Linear(in_features * pool * pool, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, self.pool), 1))


# NOTE: before 0.7 each network wrote its tail out (``head_norm`` then ``fc``); their checkpoints load through these.
STATE_DICT_RENAMES = {"head_norm.": "head.norm.", "fc.": "head.fc."}


def upgrade_head_keys(model: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with a hand-written tail's keys renamed to ``model``'s :class:`ClassifierHead` (a state dict that
    already matches, or a model without a head, comes back as it was)."""
    if not isinstance(getattr(model, "head", None), ClassifierHead) or any(k.startswith("head.") for k in state):
        return state
    out = {}
    for key, value in state.items():
        old = next((o for o in STATE_DICT_RENAMES if key.startswith(o)), None)
        out[STATE_DICT_RENAMES[old] + key.removeprefix(old) if old else key] = value
    return out
