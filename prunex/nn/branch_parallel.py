"""Branch parallelism for multi-residual blocks (Abdi & Nahavandi, §V-D): the k residual functions of every block
y = x + Σ_{i=1..k} f_i(x) are split over the N ranks of a branch group, which all see the same batch.

Rank r holds and trains f_i for i in [r·k/N, (r+1)·k/N) and computes the partial sum s_r over them; the block
output is y = x + Σ_r s_r. Two conjugate collectives make forward and backward exact:

    BranchGroup.sum_out: forward all-reduce (Σ_r s_r),  backward identity (∂L/∂s_r = ∂L/∂y, already on every rank)
    BranchGroup.copy_in: forward identity,              backward all-reduce (∂L/∂x gets every rank's Σ_i J_fiᵀ ∂L/∂y)

so every shared layer (stem, projections, the block input's BN, the head) sees the same gradients on every rank
of the group and stays replicated without further communication. A checkpoint is written in the ordinary,
unsharded layout (:func:`full_state_dict`, :func:`full_optimizer_state`) and any checkpoint is loaded into a
sharded model by picking its rank's functions (:func:`shard_state_dict`, :func:`shard_optimizer_state`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from prunex.nn.multi_residual import MultiResidualBlock


@dataclass
class Traffic:
    """What the branch group's collectives moved on this rank."""

    calls: int = 0
    bytes: int = 0
    seconds: float = 0.0  # wall time inside the collectives (blocking on gloo; launch time only on NCCL)

    def add(self, t: Tensor, seconds: float) -> None:
        self.calls += 1
        self.bytes += t.numel() * t.element_size()
        self.seconds += seconds


@dataclass
class BranchGroup:
    """This rank's place in a branch group: ``size`` ranks computing one block's functions together."""

    group: dist.ProcessGroup | None
    rank: int
    size: int
    traffic: Traffic = field(default_factory=Traffic)

    def all_reduce(self, t: Tensor) -> Tensor:
        out = t.contiguous().clone()
        tic = time.perf_counter()
        dist.all_reduce(out, group=self.group)
        self.traffic.add(out, time.perf_counter() - tic)
        return out

    def copy_in(self, x: Tensor) -> Tensor:
        """Identity forward, all-reduced gradient backward: the input of this rank's functions."""
        return _CopyToBranches.apply(x, self)

    def sum_out(self, partial: Tensor) -> Tensor:
        """All-reduced forward, identity backward: Σ over the group of the ranks' partial sums."""
        return _SumOverBranches.apply(partial, self)


class _CopyToBranches(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, group: BranchGroup) -> Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.group.all_reduce(grad), None


class _SumOverBranches(torch.autograd.Function):
    @staticmethod
    def forward(ctx, partial: Tensor, group: BranchGroup) -> Tensor:
        return group.all_reduce(partial)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


class BranchLayoutError(ValueError):
    """The model or the group size does not allow branch parallelism."""


def multi_residual_blocks(model: nn.Module) -> list[tuple[str, MultiResidualBlock]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, MultiResidualBlock)]


def check_branch_layout(model: nn.Module, size: int) -> None:
    """Raise :class:`BranchLayoutError` unless every multi-residual block's k divides over ``size`` ranks."""
    blocks = multi_residual_blocks(model)
    if not blocks:
        raise BranchLayoutError(
            f"{type(model).__name__} has no multi-residual blocks: branch parallelism splits Multi-ResNet's "
            "residual functions over ranks"
        )
    bad = sorted({len(b.function_ids) for _, b in blocks if len(b.function_ids) % size})
    if size < 1 or bad:
        raise BranchLayoutError(f"{size} branch ranks do not divide k = {', '.join(map(str, bad))} residual functions")


def shard_branches(model: nn.Module, group: BranchGroup) -> nn.Module:
    """Keep this rank's share of every block's functions (in place; the model must be unsharded and identical on
    every rank of the group, e.g. built from the same seed) and route the blocks through the group."""
    check_branch_layout(model, group.size)
    for _, block in multi_residual_blocks(model):
        per = len(block.function_ids) // group.size
        keep = slice(group.rank * per, (group.rank + 1) * per)
        block.functions = nn.ModuleList(list(block.functions)[keep])
        block.function_ids = block.function_ids[keep]
        block.branch_group = group if group.size > 1 else None
    return model


def _function_key(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}\.functions\.(\d+)\.(.*)$")


def _renamer(model: nn.Module, to_global: bool):
    """key → key with the function index of the other layout (local ↔ global); None for another rank's key."""
    patterns = [(_function_key(n), n, b.function_ids) for n, b in multi_residual_blocks(model)]

    def rename(key: str) -> str | None:
        for pattern, name, ids in patterns:
            match = pattern.match(key)
            if match:
                i, rest = int(match[1]), match[2]
                if to_global:
                    return f"{name}.functions.{ids[i]}.{rest}"
                return f"{name}.functions.{ids.index(i)}.{rest}" if i in ids else None
        return key

    return rename


def _full_order(model: nn.Module, local_names: list[str], size: int) -> list[str]:
    """The names an unsharded model lists, in its order: each block's local function run is replaced by every one
    of its k = size · (local functions) functions' names, function by function (they have the same structure)."""
    rename = _renamer(model, to_global=True)
    blocks = [(_function_key(n), n, len(b.function_ids) * size) for n, b in multi_residual_blocks(model)]
    out: list[str] = []
    done: set[str] = set()
    for key in local_names:
        for pattern, name, k in blocks:
            if pattern.match(key):
                if name not in done:
                    done.add(name)
                    suffixes = [m[2] for m in map(pattern.match, local_names) if m and int(m[1]) == 0]
                    out += [f"{name}.functions.{g}.{s}" for g in range(k) for s in suffixes]
                break
        else:
            out.append(rename(key))
    return out


def _global_names(model: nn.Module) -> dict[int, str]:
    """id(parameter) → its name in the unsharded model."""
    rename = _renamer(model, to_global=True)
    return {id(p): rename(n) for n, p in model.named_parameters()}


def _gather(group: BranchGroup, obj: Any) -> list[Any]:
    if group.size == 1:
        return [obj]
    out: list[Any] = [None] * group.size
    dist.all_gather_object(out, obj, group=group.group)
    return out


def full_state_dict(model: nn.Module, group: BranchGroup) -> dict[str, Tensor]:
    """The unsharded model's state dict (every rank of the group gets it; a collective: call on all of them)."""
    rename = _renamer(model, to_global=True)
    local = {rename(k): v.detach().cpu() for k, v in model.state_dict().items()}
    merged: dict[str, Tensor] = {}
    for part in _gather(group, local):
        merged.update(part)
    return {k: merged[k] for k in _full_order(model, list(model.state_dict()), group.size)}


def shard_state_dict(model: nn.Module, full: dict[str, Tensor]) -> dict[str, Tensor]:
    """This rank's part of an unsharded state dict, with local function indices (for ``model.load_state_dict``)."""
    rename = _renamer(model, to_global=False)
    return {local: v for k, v in full.items() if (local := rename(k)) is not None}


def _full_parameter_groups(model: nn.Module, optimizer: torch.optim.Optimizer, group: BranchGroup) -> list[list[str]]:
    """The global names of each optimizer group's parameters, in the order an unsharded model's groups list them."""
    names = _global_names(model)
    own_group = {names[id(p)]: g for g, pg in enumerate(optimizer.param_groups) for p in pg["params"]}
    groups: list[list[str]] = [[] for _ in optimizer.param_groups]
    for name in _full_order(model, [n for n, _ in model.named_parameters()], group.size):
        g = own_group.get(name)
        if g is None:  # another rank's function: the group of the same parameter in this rank's first function
            g = own_group.get(_as_own(model, name))
        if g is not None:
            groups[g].append(name)
    return groups


def _as_own(model: nn.Module, global_name: str) -> str:
    for n, b in multi_residual_blocks(model):
        match = _function_key(n).match(global_name)
        if match:
            return f"{n}.functions.{b.function_ids[0]}.{match[2]}"
    return global_name


def _indexed(groups: list[tuple[dict[str, Any], list[str]]], states: dict[str, Any]) -> dict[str, Any]:
    """An optimizer state dict from (group settings, member names) in order and the states by name: parameters
    numbered consecutively across groups, as ``torch.optim.Optimizer.state_dict`` numbers them."""
    index, param_groups, state = 0, [], {}
    for settings, members in groups:
        ids = list(range(index, index + len(members)))
        param_groups.append({**settings, "params": ids})
        state |= {i: states[n] for i, n in zip(ids, members, strict=True) if n in states}
        index += len(members)
    return {"state": state, "param_groups": param_groups}


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, group: BranchGroup) -> dict[str, Any]:
    """The optimizer state dict an unsharded run would have (a collective over the group)."""
    local = optimizer.state_dict()
    names = _global_names(model)
    flat = [names[id(p)] for pg in optimizer.param_groups for p in pg["params"]]
    states = {
        flat[i]: {k: v.cpu() if torch.is_tensor(v) else v for k, v in s.items()} for i, s in local["state"].items()
    }
    merged: dict[str, Any] = {}
    for part in _gather(group, states):
        merged.update(part)
    full_groups = _full_parameter_groups(model, optimizer, group)
    return _indexed(list(zip(local["param_groups"], full_groups, strict=True)), merged)


def shard_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, full: dict[str, Any], group: BranchGroup
) -> dict[str, Any]:
    """This rank's part of an unsharded optimizer state dict (for ``optimizer.load_state_dict``)."""
    by_name = {}
    for pg, members in zip(full["param_groups"], _full_parameter_groups(model, optimizer, group), strict=True):
        by_name |= {n: full["state"][i] for i, n in zip(pg["params"], members, strict=True) if i in full["state"]}
    names = _global_names(model)
    own = [[names[id(p)] for p in pg["params"]] for pg in optimizer.param_groups]
    return _indexed(list(zip(full["param_groups"], own, strict=True)), by_name)
