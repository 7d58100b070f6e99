"""A model rebuilt from a checkpoint: its registered builder, its spec's arguments, its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunex.artifacts.checkpoint import CheckpointError, load_checkpoint
from prunex.artifacts.model_spec import ModelSpec
from prunex.models.learn_groups import learn_groups
from prunex.models.registry import UnknownModelError, create_model, rebuild_kwargs
from prunex.models.structure import apply_structure
from prunex.nn.branch_gates import BranchGates
from prunex.nn.classifier import upgrade_head_keys


def match_gate_state(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Freeze the MaskConnect gates whose connectivity the state dict holds as a fixed mask (dropping the tie-break
    priority such a state dict may still carry: a frozen mask no longer uses it)."""
    for name, module in model.named_modules():
        if isinstance(module, BranchGates) and f"{name}.mask" in state_dict:
            if module.weight is not None:
                module.freeze()
            state_dict.pop(f"{name}.priority", None)


def build_model(spec: ModelSpec | dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Rebuild a model from its spec (its builder, arguments and, if it learned the grouping of its convolutions,
    the same :func:`learn_groups` choice; a retrained structure's grouped convs) and, if given, load the state
    dict (strictly; one written before the networks had a :class:`~prunex.nn.classifier.ClassifierHead` has its
    ``fc`` / ``head_norm`` keys renamed)."""
    try:
        spec = ModelSpec.from_dict(spec)
    except ValueError as err:
        raise CheckpointError(f"cannot build a model from {spec!r}: {err}") from None
    try:
        model = create_model(spec.name, **rebuild_kwargs(spec.name, spec.kwargs))
        if spec.learn_groups:
            learn_groups(model, **spec.learn_groups)
        if spec.structure:
            apply_structure(model, spec.structure["groups"])
            model.prunex_spec = spec  # with where the structure came from
    except UnknownModelError as err:
        raise CheckpointError(f"checkpoint names a model this prunex does not know: {err}") from None
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot build {spec.name} from the checkpoint's arguments: {err}") from None
    if state_dict is not None:
        state_dict = upgrade_head_keys(model, state_dict)  # checkpoints written before the ClassifierHead
        match_gate_state(model, state_dict)
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:
            lines = [ln.strip() for ln in str(err).splitlines()[1:4] if ln.strip()]
            raise CheckpointError(
                f"the checkpoint's weights do not fit {spec.name}({spec.kwargs}): {' '.join(lines)[:400]}"
            ) from None
    return model


def model_from_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode, checkpoint dict)."""
    ckpt = load_checkpoint(path)
    return build_model(ckpt["spec"], ckpt["state_dict"]).eval(), ckpt
