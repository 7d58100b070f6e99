"""Gates fused by default: a model that prunex builds computes all its gates at once in every training forward pass.

:func:`fuse_gates` installs the model's :class:`~prunex.nn.GateFusion` as a pair of forward hooks on the model
itself, so they run however the model is called — a plain loop, DistributedDataParallel, a Lightning module.
Before a training forward pass with autograd recording, the pre-hook

1. projects the MaskConnect real masks that an optimiser step wrote since they were last projected (read from
   their version counters on the host; Algorithm 1's clipping, done when the masks are next read instead of right
   after the step — the values every forward pass sees are the same);
2. computes every DGConv layer's U ⊙ W in one batch and samples every learned MaskConnect mask in one draw.

In evaluation, under ``torch.no_grad`` and once the gates are compiled away, the hooks do nothing (the layers'
own forward projects a stale mask before reading it). Under ``torch.compile`` the projection runs outside the
graph and the compiler fuses the layers' own gate computation.

The hooks are plain functions that find the fusion on the model, so ``copy.deepcopy``, pickling and
``torch.compile`` see ordinary module state.
"""

from __future__ import annotations

import torch
from torch import nn

from prunex.nn.gate_fusion import GateFusion
from prunex.nn.gates import gate_parameters

_ATTRIBUTE = "_prunex_gate_fusion"


def gate_fusion_of(model: nn.Module) -> GateFusion | None:
    """The fusion :func:`fuse_gates` installed on ``model``, or None."""
    fusion = model.__dict__.get(_ATTRIBUTE)
    return fusion if isinstance(fusion, GateFusion) else None


def fuse_gates(model: nn.Module) -> GateFusion:
    """Make ``model`` fuse its own gates in every training forward pass from now on (idempotent); its fusion.

    :func:`~prunex.create_model`, :func:`~prunex.learn_groups` and :func:`~prunex.train.build_model` call it, so
    models from prunex need nothing more in a training loop. The returned fusion gives the model-wide resource
    term (:meth:`GateFusion.complexity`) and projection (:meth:`GateFusion.project_`).
    """
    fusion = gate_fusion_of(model)
    if fusion is None:
        fusion = GateFusion(model)
        model.__dict__[_ATTRIBUTE] = fusion
        model.register_forward_pre_hook(_before_forward)
        model.register_forward_hook(_after_forward, always_call=True)
    return fusion


def fuse_gates_if_gated(model: nn.Module) -> nn.Module:
    """:func:`fuse_gates` when ``model`` has gates to learn (plain networks, and fixed connectivity, get no hooks);
    returns ``model``."""
    if gate_parameters(model):
        fuse_gates(model)
    return model


def unfuse_gates(model: nn.Module) -> nn.Module:
    """Remove what :func:`fuse_gates` installed: every layer computes its own gates again. Returns ``model``."""
    model.__dict__.pop(_ATTRIBUTE, None)
    for hooks, ours in ((model._forward_pre_hooks, _before_forward), (model._forward_hooks, _after_forward)):
        for key in [k for k, hook in hooks.items() if hook is ours]:
            del hooks[key]
            model._forward_hooks_always_called.pop(key, None)
    return model


def _before_forward(model: nn.Module, args: tuple) -> None:
    if not (torch.is_grad_enabled() and model.training):
        return
    fusion = gate_fusion_of(model)
    if fusion is None:
        return
    if torch.compiler.is_compiling():
        _project_outside_graph(fusion)
        return
    fusion.before_forward()


@torch.compiler.disable
def _project_outside_graph(fusion: GateFusion) -> None:
    fusion.before_forward(fuse=False)


def _after_forward(model: nn.Module, args: tuple, output: object) -> None:
    fusion = gate_fusion_of(model)
    if fusion is not None and not torch.compiler.is_compiling():
        fusion.after_forward()
