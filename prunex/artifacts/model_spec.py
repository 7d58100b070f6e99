"""What rebuilds a network: :class:`ModelSpec`, written into every checkpoint (``"spec"``) and a compressed model's
``model.json`` (``"source"``), replayed by ``prunex.models.build_model``.

Migration: specs written before prunex 0.3 hold only ``name`` and ``kwargs``; those before 0.5 have no
``structure``. A missing entry reads as None (nothing learned, nothing retrained). A network built outside the
registry (``torchvision:NAME``, ``module:function``) is named the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """A builder's name and arguments, which of its convolutions learn their grouping (``learn_groups``: the
    arguments of ``prunex.models.learn_groups``), and the grouped network retrained from what a DGConv run learned
    (``structure``: ``{"groups": {layer: G}, "source": run}``)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    learn_groups: dict[str, Any] | None = None
    structure: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values (a checkpoint is read with ``weights_only``); the optional entries only when set."""
        out: dict[str, Any] = {"name": self.name, "kwargs": dict(self.kwargs)}
        for key in ("learn_groups", "structure"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: ModelSpec | dict[str, Any]) -> ModelSpec:
        """The spec a checkpoint or ``model.json`` holds; ValueError for one without a name and a table of
        arguments."""
        if isinstance(data, ModelSpec):
            return data
        if not (
            isinstance(data, dict) and isinstance(data.get("name"), str) and isinstance(data.get("kwargs", {}), dict)
        ):
            raise ValueError("a model spec needs a name and a table of arguments")
        return cls(data["name"], dict(data.get("kwargs", {})), data.get("learn_groups"), data.get("structure"))
