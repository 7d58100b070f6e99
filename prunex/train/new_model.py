"""The model a new run trains: the registry's builder with the configuration's arguments and the dataset's shape."""

from __future__ import annotations

import inspect
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from prunex.artifacts.errors import InputError
from prunex.data import DatasetInfo
from prunex.models import GroupLearning, builder_of, create_model, learn_groups
from prunex.nn.branch_parallel import BranchLayoutError, check_branch_layout
from prunex.nn.classifier import upgrade_head_keys
from prunex.train.config import ConfigError


def build_new_model(
    name: str, kwargs: dict[str, Any], weights: str | None = None, grouping: GroupLearning | None = None
) -> nn.Module:
    """``create_model(name, **kwargs)``, then the user's ``weights`` (a state dict, loaded safely and strictly), then
    :func:`learn_groups` where asked; any refusal is a configuration error that says what failed."""
    check_model_kwargs(name, kwargs)
    try:
        model = create_model(name, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build {name} with {kwargs}: {err}") from None
    if weights:
        load_weights(model, weights)
    if grouping is not None:
        g = grouping
        try:
            learn_groups(model, g.where, pointwise=g.pointwise, depthwise=g.depthwise, budget=g.budget)
        except ValueError as err:
            raise ConfigError(f"--learn-groups: {err}") from err
    return model


_KINDS = ((bool, "true or false"), (int, "a whole number"), (float, "a number"), (str, "a string"))


def check_model_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """Every keyword is one the builder takes, of the kind its default has (``depth=abc`` for an integer depth is
    refused here, in words, not deep inside the builder)."""
    params = inspect.signature(builder_of(name)).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            raise ConfigError(f"{name} takes no argument {', '.join(unknown)}; it takes: {', '.join(params)}")
    for key, value in kwargs.items():
        default = params[key].default if key in params else None
        for kind, words in _KINDS:
            if default is None or not isinstance(default, kind):
                continue
            fits = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            fits |= kind is float and isinstance(value, int) and not isinstance(value, bool)
            if not fits:
                raise ConfigError(f"{name}: {key} must be {words}, got {value!r}")
            break


def check_branch_model(name: str, kwargs: dict[str, Any], size: int) -> None:
    """Refuse ``--branch-parallel size`` for a network it cannot split (no multi-residual blocks, or a k that
    ``size`` does not divide) before any process group or data is touched: the network is built on the meta
    device, which allocates nothing. Builders that cannot run there are left to the check after the real build."""
    if size <= 1:
        return
    try:
        with torch.device("meta"):
            model = create_model(name, **kwargs)
    except Exception:  # noqa: BLE001 — a preflight only; the real build reports its own errors
        return
    try:
        check_branch_layout(model, size)
    except BranchLayoutError as err:
        raise ConfigError(f"--branch-parallel {size}: {err}") from err


def load_weights(model: nn.Module, path: str) -> None:
    """A state dict from ``path`` (``.safetensors``, or a ``torch.save`` file read with ``weights_only``), strictly."""
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
        model.load_state_dict(upgrade_head_keys(model, state), strict=True)
    except FileNotFoundError:
        raise InputError(f"--weights {path}: no such file") from None
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError, SafetensorError) as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()][:3]
        raise InputError(f"--weights {path}: cannot load it into the model: {' '.join(lines)[:400]}") from err


def model_kwargs_for(model: str, kwargs: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    """The model's kwargs with ``num_classes`` / ``in_chans`` taken from the dataset where the builder has them."""
    accepted = inspect.signature(builder_of(model)).parameters
    out = dict(kwargs)
    if "num_classes" in accepted:
        out.setdefault("num_classes", info.num_classes)
    if "in_chans" in accepted:
        out.setdefault("in_chans", info.in_chans)
    elif info.in_chans != 3:
        raise ConfigError(f"{model} takes 3-channel images; {info.name} has {info.in_chans}")
    return out


def retrained_structure(model: nn.Module, source: str) -> nn.Module:
    """``model`` (the source run's network, freshly built) with every DGConv replaced by a plain conv of the group
    count the run at ``source`` learned: DGConv's Table 6 retraining."""
    from prunex.artifacts.checkpoint import CheckpointError
    from prunex.artifacts.layout import checkpoint_file
    from prunex.models.from_checkpoint import model_from_checkpoint
    from prunex.models.structure import apply_structure, learned_groups

    try:
        learned, _ = model_from_checkpoint(checkpoint_file(Path(source)))
    except CheckpointError as err:
        raise ConfigError(f"--structure-from {source}: {err}") from err
    groups = learned_groups(learned)
    if not groups:
        raise ConfigError(f"--structure-from {source}: its network has no DGConv layers, so nothing was learned")
    apply_structure(model, groups)
    model.prunex_spec = replace(model.prunex_spec, structure={**model.prunex_spec.structure, "source": str(source)})
    return model
