"""The IR: a torch.fx GraphModule of the frozen model, and the small helpers passes share."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from prunex.artifacts.errors import InputError
from prunex.nn.conv_geometry import is_plain_conv
from prunex.nn.dgconv import DGConv2d
from prunex.nn.gates import freeze_gates
from prunex.passes.out_of_place import make_out_of_place


class UntraceableModelError(InputError):
    """torch.fx cannot trace the model; the message names the innermost module that failed and why."""


class PrunexTracer(fx.Tracer):
    """Standard leaves plus DGConv2d, which the lowering pass rewrites as a whole, and convolutions with a forward of
    their own (timm's ``Conv2dSame`` reads the input size to pad: traced, that would be control flow on a shape).
    Buffers (frozen gate masks) become get_attr nodes, so the gate arithmetic stays visible in the graph."""

    proxy_buffer_attributes = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, DGConv2d) or (isinstance(m, nn.Conv2d) and not is_plain_conv(m)):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except UntraceableModelError:
            raise
        except Exception as err:
            where = self.path_of_module(m) or "the model"
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UntraceableModelError(
                f"torch.fx cannot trace {where} ({type(m).__name__}): {first[:300]}. prunex compiles a symbolically "
                "traceable network: move data-dependent control flow out of forward (or make that module a leaf)"
            ) from err


def copy_sharing_tensors(module: nn.Module, *, fresh_parameters: bool = False) -> nn.Module:
    """A deep copy of the module tree (and of a GraphModule's graph) whose parameters and buffers are the same
    tensors: no weight is copied. ``fresh_parameters``: new ``nn.Parameter`` objects over the same storage that do
    not require grad (so flags set on the copy leave ``module``'s alone). Sound only while nothing writes into a
    tensor in place — which the pass runner checks (:func:`tensor_versions`)."""
    memo: dict[int, object] = {}
    for p in module.parameters():
        memo[id(p)] = nn.Parameter(p.detach(), requires_grad=False) if fresh_parameters else p
    for b in module.buffers():
        memo[id(b)] = b
    return copy.deepcopy(module, memo)


def release_tensors(module: nn.Module) -> None:
    """Drop every parameter and buffer reference of a copy made by :func:`copy_sharing_tensors` (its own module
    objects; the tensors themselves live on wherever else they are used)."""
    for m in module.modules():
        m._parameters.clear()
        m._buffers.clear()


def tensor_versions(module: nn.Module) -> dict[int, tuple[torch.Tensor, int]]:
    """Every parameter and buffer with its version counter (which an in-place write increments)."""
    return {id(t): (t, t._version) for t in [*module.parameters(), *module.buffers()]}


def written_in_place(versions: dict[int, tuple[torch.Tensor, int]]) -> int:
    """How many of the tensors recorded by :func:`tensor_versions` were written in place since."""
    return sum(t._version != v for t, v in versions.values())


def freeze(model: nn.Module) -> nn.Module:
    """A copy with every gate constant: eval mode (BN statistics, top-K masks), masks frozen, no in-place ops.
    The copy shares ``model``'s weights (no pass writes into a tensor; each replaces it)."""
    frozen = copy_sharing_tensors(model, fresh_parameters=True).eval()
    freeze_gates(frozen)
    for m in frozen.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return frozen


def trace(model: nn.Module) -> fx.GraphModule:
    """Trace a frozen model; in-place operations become out-of-place where nothing else can see the write."""
    try:
        graph = PrunexTracer().trace(model)
    except UntraceableModelError:
        raise
    except Exception as err:  # in the root's own forward
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UntraceableModelError(
            f"torch.fx cannot trace {type(model).__name__}.forward: {first[:300]}. prunex compiles a symbolically "
            "traceable network: move data-dependent control flow out of forward"
        ) from err
    gm = fx.GraphModule(model, graph, model.__class__.__name__)
    make_out_of_place(gm)
    return finish(gm)


def finish(gm: fx.GraphModule) -> fx.GraphModule:
    """Check the graph, drop the submodules and root-level constants it no longer uses, regenerate code."""
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name in [b for b in gm._buffers if b not in used]:
        del gm._buffers[name]
    gm.recompile()
    return gm


def module_of(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def is_module(gm: fx.GraphModule, node: fx.Node, kinds: type | tuple[type, ...]) -> bool:
    return node.op == "call_module" and isinstance(gm.get_submodule(node.target), kinds)


def fresh_name(gm: fx.GraphModule, base: str) -> str:
    """An attribute path not used yet in ``gm`` ("a.b" becomes "a_b")."""
    base = base.replace(".", "_")
    names = {n for n, _ in gm.named_modules()} | {n for n, _ in gm.named_buffers()} | set(dir(gm))
    i, name = 0, base
    while name in names:
        i += 1
        name = f"{base}_{i}"
    return name


def own_module(gm: fx.GraphModule, node: fx.Node) -> nn.Module:
    """The module ``node`` calls, cloned under a new name first if other nodes call it too (so it can be edited)."""
    target = node.target
    callers = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == target]
    if len(callers) > 1:
        clone = copy.deepcopy(gm.get_submodule(target))
        node.target = fresh_name(gm, target)
        gm.add_submodule(node.target, clone)
    return gm.get_submodule(node.target)


def replace_module(gm: fx.GraphModule, node: fx.Node, module: nn.Module) -> None:
    """Make ``node`` call ``module`` (under a fresh name when its old module is shared)."""
    callers = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == node.target]
    if len(callers) > 1:
        node.target = fresh_name(gm, node.target)
    gm.add_submodule(node.target, module)


def add_buffer(gm: fx.GraphModule, base: str, value: torch.Tensor, before: fx.Node) -> fx.Node:
    """Register a constant tensor on ``gm`` and insert a get_attr node for it before ``before``."""
    name = fresh_name(gm, base)
    gm.register_buffer(name, value)
    with gm.graph.inserting_before(before):
        return gm.graph.get_attr(name)


def count_params(gm: nn.Module) -> int:
    """Weights the module holds (parameters; BN statistics and index buffers are not counted)."""
    return sum(p.numel() for p in gm.parameters())


def count_macs(gm: fx.GraphModule, example: torch.Tensor) -> int:
    """Multiply-accumulates of conv and linear layers for one sample (shapes from a forward pass)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * module.in_channels // module.groups * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in gm.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            gm(example[:1])
    finally:
        for h in handles:
            h.remove()
    return total


def call_sites(gm: fx.GraphModule) -> list[str]:
    """Targets of the call_module nodes, in graph order (what the graph actually runs)."""
    return [n.target for n in gm.graph.nodes if n.op == "call_module"]


def module_fingerprints(gm: fx.GraphModule) -> dict[str, int]:
    """Per called module: a hash of its type, and its parameters' and buffers' shapes and sums (to see which layers
    a pass edited)."""
    out = {}
    for target in set(call_sites(gm)):
        m = gm.get_submodule(target)
        tensors = [*m.parameters(), *m.buffers()]
        out[target] = hash(
            (type(m).__name__, tuple(t.shape for t in tensors), tuple(float(t.detach().float().sum()) for t in tensors))
        )
    return out


class ModuleState(NamedTuple):
    """A called module as a pass may change it: its type and which tensors (by identity, with their versions)."""

    kind: type
    tensors: tuple[torch.Tensor, ...]
    versions: tuple[int, ...]

    def same(self, other: ModuleState | None) -> bool:
        return (
            other is not None
            and self.kind is other.kind
            and len(self.tensors) == len(other.tensors)
            and all(a is b for a, b in zip(self.tensors, other.tensors, strict=True))
            and self.versions == other.versions
        )


def module_states(gm: fx.GraphModule) -> dict[str, ModuleState]:
    """Per called module, its :class:`ModuleState`: cheap (nothing is read), and exact because the state holds the
    tensors themselves, so no new tensor can take an old one's identity."""
    out = {}
    for target in dict.fromkeys(call_sites(gm)):
        m = gm.get_submodule(target)
        tensors = (*m.parameters(), *m.buffers())
        out[target] = ModuleState(type(m), tensors, tuple(t._version for t in tensors))
    return out


def parameter_device(gm: nn.Module) -> torch.device:
    """Where the module's parameters are (the CPU if it has none)."""
    return next((p.device for p in gm.parameters()), torch.device("cpu"))


@dataclass(frozen=True)
class ChannelSlice:
    """``torch.narrow(base, 1, start, width)``: a block of a stacked tensor's channels."""

    base: fx.Node
    start: int
    width: int


def as_channel_slice(node: object) -> ChannelSlice | None:
    """``node`` as a channel slice with constant bounds, or None."""
    if (
        isinstance(node, fx.Node)
        and node.op == "call_function"
        and node.target is torch.narrow
        and node.args[1] == 1
        and all(isinstance(a, int) for a in node.args[2:4])
    ):
        return ChannelSlice(node.args[0], node.args[2], node.args[3])
    return None


def recorded_channels(node: fx.Node) -> int | None:
    """The channel count :func:`propagate_shapes` recorded for a 4-d ``node`` (None if none was)."""
    meta = node.meta.get("tensor_meta")
    return int(meta.shape[1]) if meta is not None and len(meta.shape) == 4 else None


def narrow_channels(gm: fx.GraphModule, base: fx.Node, start: int, width: int, channels: int | None = None) -> fx.Node:
    """``base`` itself when channels [start, start + width) are all of it (``channels``: its count, where no shape
    is recorded), else a new ``narrow`` node, inserted at the graph's current insertion point."""
    if start == 0 and width == (channels or recorded_channels(base)):
        return base
    return gm.graph.call_function(torch.narrow, (base, 1, start, width))


def propagate_shapes(gm: fx.GraphModule, example_shape: tuple[int, ...]) -> None:
    """Record every node's output shape (``node.meta['tensor_meta']``) for a batch of two zero inputs of
    ``example_shape`` (C, H, W), in the module's dtype and on its device."""
    dtype = next((p.dtype for p in gm.parameters()), torch.float32)
    device = parameter_device(gm)
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(2, *example_shape, dtype=dtype, device=device))


RESHAPE_FUNCTIONS = {torch.reshape, torch.flatten}
RESHAPE_METHODS = {"view", "reshape", "flatten"}


def meta_shape(node: object) -> tuple[int, ...] | None:
    """``node``'s output shape as :func:`propagate_shapes` recorded it (None for a non-node or a non-tensor)."""
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def sole_user(node: fx.Node) -> fx.Node | None:
    """The one node that reads ``node``, if exactly one does."""
    return next(iter(node.users)) if len(node.users) == 1 else None


def is_reshape(node: fx.Node) -> bool:
    """``view`` / ``reshape`` / ``flatten``, as a method or a torch function (row-major: the values keep order)."""
    return (node.op == "call_function" and node.target in RESHAPE_FUNCTIONS) or (
        node.op == "call_method" and node.target in RESHAPE_METHODS
    )


def input_shape(node: fx.Node, batch: int) -> tuple[int, ...]:
    """The shape of ``node``'s first input at batch size ``batch`` (after :func:`propagate_shapes`)."""
    src = node.args[0]
    return (batch, *tuple(src.meta["tensor_meta"].shape)[1:])
