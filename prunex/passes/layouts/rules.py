"""How each kind of layer meets channel layouts: one rule per module type, function and method, saying both how the
layer constrains the layouts of its inputs and output (a :class:`LayoutKind`) and how the layer is re-indexed when
they change (its ``reindex``).

σ_in, σ_out: the stored order of the layer's input and output channels (stored[:, j] = logical[:, σ[j]]); None for
the identity. A layer of kind ABSORB takes any σ_in and σ_out into its weights; PASS works channel by channel, so
its output keeps its inputs' layout (re-indexing its per-channel vectors by σ_out); GROUPED takes only layouts that
permute within its groups.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import fx, nn

from prunex.passes.graph import is_reshape, module_of


class LayoutKind(StrEnum):
    ABSORB = "absorb"  # any input and output layout, taken into its weights (dense conv, linear)
    GROUPED = "grouped"  # layouts that permute within its groups (a grouped conv)
    PASS = "pass"  # channel by channel: the output's layout is its inputs' (activations, BN, pools, depthwise conv)
    CONCAT = "concat"  # along channels: the parts' layouts side by side
    SLICE = "slice"  # a block of channels: the source's layout must map the block onto itself
    GATHER = "gather"  # a fixed permutation: removable when the layouts on either side differ by it
    INTO_LINEAR = "into_linear"  # a flatten read only by linear layers: they absorb its source's layout
    SHAPE = "shape"  # reads the shape only, which no layout changes
    OTHER = "other"  # not seen through: its inputs and output keep the identity layout


PASS_MODULES = (  # channel by channel, nothing to re-index (BatchNorm, which has, is its own rule below)
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.SiLU,
    nn.GELU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.AvgPool2d,
    nn.MaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
PASS_FUNCTIONS = {
    torch.relu,
    torch.sigmoid,
    torch.tanh,
    nn.functional.relu,
    nn.functional.relu6,
    nn.functional.silu,
    nn.functional.gelu,
    nn.functional.hardswish,
    nn.functional.leaky_relu,
    nn.functional.dropout,
    nn.functional.avg_pool2d,
    nn.functional.max_pool2d,
    nn.functional.adaptive_avg_pool2d,
    nn.functional.adaptive_max_pool2d,
}
PASS_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}
BINARY = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul, torch.sub}


def channels(node: fx.Node) -> int | None:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape") or len(meta.shape) not in (2, 4):
        return None
    return int(meta.shape[1])


def spatial(node: fx.Node) -> int:
    shape = node.meta["tensor_meta"].shape
    return int(shape[2] * shape[3]) if len(shape) == 4 else 1


def is_gather(node: fx.Node) -> bool:
    return (
        node.op == "call_function"
        and node.target is torch.index_select
        and len(node.args) == 3
        and node.args[1] == 1
        and isinstance(node.args[2], fx.Node)
        and node.args[2].op == "get_attr"
    )


def flattened_into_linear(gm: fx.GraphModule, node: fx.Node) -> fx.Node | None:
    """The (N, C, H, W) source when ``node`` reshapes it to (N, C·H·W), H·W > 1, for linear layers only: they read
    its channels as blocks of H·W input columns, so they absorb its layout (as they absorb a 2-D one)."""
    source = node.args[0] if node.args else None
    if not isinstance(source, fx.Node) or channels(source) is None or channels(node) is None:
        return None
    shape, flat = node.args[0].meta["tensor_meta"].shape, node.meta["tensor_meta"].shape
    reshape = is_reshape(node) or (node.op == "call_module" and isinstance(module_of(gm, node), nn.Flatten))
    if not reshape or len(shape) != 4 or tuple(flat) != (shape[0], shape[1] * shape[2] * shape[3]):
        return None
    readers = list(node.users)
    if spatial(source) == 1 or not readers:
        return None
    if all(u.op == "call_module" and isinstance(module_of(gm, u), nn.Linear) and u.args[0] is node for u in readers):
        return source
    return None


def channel_repeat(node: fx.Node) -> int | None:
    """k for x.repeat(1, k, 1, 1) (the channels k times over: a concatenation of x with itself)."""
    reps = node.args[1:] if len(node.args) > 2 else (node.args[1] if len(node.args) == 2 else ())
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else ()
    if len(reps) == 4 and reps[0] == 1 and reps[2:] == (1, 1) and isinstance(reps[1], int):
        return reps[1]
    return None


def spatial_reduction(node: fx.Node) -> bool:
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return isinstance(dims, (tuple, list)) and sorted(d % 4 for d in dims) == [2, 3]


def channel_slice(node: fx.Node) -> tuple[int, int] | None:
    """(start, length) of x[:, a:b] (a getitem slicing the channel dimension only)."""
    x, index = node.args
    if not isinstance(x, fx.Node) or not isinstance(index, tuple) or len(index) < 2:
        return None
    first, ch, *rest = index
    if first != slice(None) or not isinstance(ch, slice) or ch.step not in (None, 1):
        return None
    if any(r != slice(None) for r in rest):
        return None
    c = channels(x)
    if c is None:
        return None
    start, stop, _ = ch.indices(c)
    return start, stop - start


# -- re-indexing a module for new layouts ------------------------------------------------------------------------
def permute_param(module: nn.Module, name: str, index: torch.Tensor, dim: int = 0) -> None:
    """Replace ``module.<name>`` by its re-indexed copy along ``dim`` (passes replace tensors, never write them)."""
    t = getattr(module, name, None)
    if t is None:
        return
    value = t.detach().index_select(dim, index.to(t.device))
    setattr(module, name, nn.Parameter(value, requires_grad=False) if isinstance(t, nn.Parameter) else value)


def _reindex_conv(m: nn.Conv2d, s_in: torch.Tensor | None, s_out: torch.Tensor | None) -> None:
    """W'[o, i] = W[σ_out[o], σ_in[i]]; a depthwise conv's filters follow σ_out; a grouped conv's input columns are
    re-indexed within each group (σ_in permutes within groups)."""
    if s_out is not None:
        permute_param(m, "weight", s_out)
        permute_param(m, "bias", s_out)
    if s_in is None or m.groups == m.in_channels == m.out_channels > 1:
        return
    if m.groups == 1:
        permute_param(m, "weight", s_in, dim=1)
        return
    size = m.in_channels // m.groups
    per_out = (s_in % size).view(m.groups, size).repeat_interleave(m.out_channels // m.groups, dim=0)
    w = m.weight.detach()
    m.weight = nn.Parameter(torch.gather(w, 1, per_out[:, :, None, None].expand_as(w)), requires_grad=False)


def _reindex_linear(m: nn.Linear, s_in: torch.Tensor | None, s_out: torch.Tensor | None) -> None:
    """W'[o, i] = W[σ_out[o], σ_in[i]]; a flattened (C, H, W) input's columns move as blocks of H·W."""
    if s_out is not None:
        permute_param(m, "weight", s_out)
        permute_param(m, "bias", s_out)
    if s_in is not None:
        spatial_size = m.in_features // len(s_in)
        cols = (s_in[:, None] * spatial_size + torch.arange(spatial_size)).flatten()
        permute_param(m, "weight", cols, dim=1)


def _reindex_batchnorm(m: nn.Module, s_in: torch.Tensor | None, s_out: torch.Tensor | None) -> None:
    if s_out is not None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            permute_param(m, name, s_out)


# -- the rules ------------------------------------------------------------------------------------------------------
Reindex = Callable[[nn.Module, torch.Tensor | None, torch.Tensor | None], None]


@dataclass(frozen=True)
class ModuleRule:
    kind: Callable[[nn.Module, fx.Node], LayoutKind]
    reindex: Reindex | None = None  # None: nothing in the module depends on the layout


def _always(kind: LayoutKind) -> Callable[..., LayoutKind]:
    return lambda *_: kind


def _conv_kind(m: nn.Conv2d, node: fx.Node) -> LayoutKind:
    if m.groups == 1:
        return LayoutKind.ABSORB
    return LayoutKind.PASS if m.groups == m.in_channels == m.out_channels else LayoutKind.GROUPED


def _flatten_module_kind(m: nn.Flatten, node: fx.Node) -> LayoutKind:
    return LayoutKind.PASS if m.start_dim == 1 and spatial(node.args[0]) == 1 else LayoutKind.OTHER


MODULE_RULES: dict[type, ModuleRule] = {
    **{t: ModuleRule(_always(LayoutKind.PASS)) for t in PASS_MODULES},
    nn.BatchNorm1d: ModuleRule(_always(LayoutKind.PASS), _reindex_batchnorm),  # its vectors follow σ_out
    nn.BatchNorm2d: ModuleRule(_always(LayoutKind.PASS), _reindex_batchnorm),
    nn.Conv2d: ModuleRule(_conv_kind, _reindex_conv),
    nn.Linear: ModuleRule(_always(LayoutKind.ABSORB), _reindex_linear),
    nn.Flatten: ModuleRule(_flatten_module_kind),
}


def module_rule(m: nn.Module) -> ModuleRule | None:
    return next((MODULE_RULES[cls] for cls in type(m).__mro__ if cls in MODULE_RULES), None)


def _flatten_kind(node: fx.Node) -> LayoutKind:
    return LayoutKind.PASS if node.args[1:2] == (1,) and spatial(node.args[0]) == 1 else LayoutKind.OTHER


def _cat_kind(node: fx.Node) -> LayoutKind:
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    return LayoutKind.CONCAT if dim == 1 else LayoutKind.OTHER


FUNCTION_RULES: dict[Callable, Callable[[fx.Node], LayoutKind]] = {
    **{f: _always(LayoutKind.PASS) for f in PASS_FUNCTIONS | BINARY},
    torch.flatten: _flatten_kind,
    torch.cat: _cat_kind,
    torch.narrow: lambda n: LayoutKind.SLICE if n.args[1] == 1 else LayoutKind.OTHER,
    operator.getitem: lambda n: LayoutKind.SLICE if channel_slice(n) is not None else LayoutKind.OTHER,
    torch.index_select: lambda n: LayoutKind.GATHER if is_gather(n) else LayoutKind.OTHER,
    getattr: lambda n: LayoutKind.SHAPE if n.args[1:] == ("shape",) else LayoutKind.OTHER,
}
METHOD_RULES: dict[str, Callable[[fx.Node], LayoutKind]] = {
    **{m: _always(LayoutKind.PASS) for m in PASS_METHODS},
    "size": _always(LayoutKind.SHAPE),
    "dim": _always(LayoutKind.SHAPE),
    "repeat": lambda n: LayoutKind.CONCAT if channel_repeat(n) is not None else LayoutKind.OTHER,
    "flatten": _flatten_kind,
    "mean": lambda n: LayoutKind.PASS if spatial_reduction(n) else LayoutKind.OTHER,
}


def _module_kind(gm: fx.GraphModule, node: fx.Node) -> LayoutKind:
    m = module_of(gm, node)
    rule = module_rule(m)
    return rule.kind(m, node) if rule is not None else LayoutKind.OTHER


def layout_kind(gm: fx.GraphModule, node: fx.Node) -> LayoutKind:
    """The rule ``node`` follows: by its module's type, its function or its method."""
    if flattened_into_linear(gm, node) is not None:
        return LayoutKind.INTO_LINEAR  # its source's layout is the linear layers' to absorb; its own stays the identity
    if node.op == "call_module":
        return _module_kind(gm, node)
    if node.op == "call_function":
        rule = FUNCTION_RULES.get(node.target)
        return rule(node) if rule is not None else LayoutKind.OTHER
    if node.op == "call_method":
        rule = METHOD_RULES.get(node.target)
        return rule(node) if rule is not None else LayoutKind.OTHER
    return LayoutKind.OTHER
