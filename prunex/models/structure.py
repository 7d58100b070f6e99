"""A plain grouped network with the group counts a DGConv run learned (DGConv's Table 6: the learned structure,
retrained from scratch): every DGConv2d becomes an ``nn.Conv2d`` of the same geometry with G groups."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from prunex.artifacts.model_spec import ModelSpec
from prunex.nn.conv_geometry import conv_geometry
from prunex.nn.dgconv import DGConv2d
from prunex.nn.init import he_init_


def learned_groups(model: nn.Module) -> dict[str, int]:
    """G of every DGConv layer, by module name (G = 2^(number of separating gates))."""
    return {name: m.num_groups for name, m in model.named_modules() if isinstance(m, DGConv2d)}


def apply_structure(model: nn.Module, groups: dict[str, int]) -> nn.Module:
    """Replace each named DGConv2d by a fresh ``nn.Conv2d`` with its G groups (in place), He-initialised as every
    network of the papers starts (:func:`~prunex.nn.init.he_init_`). The learned channel order does not matter when
    training from scratch: any G-group conv is the same family of functions up to a relabelling of channels.
    Raises ValueError for a name that is not a DGConv or a G it cannot hold."""
    layers = dict(model.named_modules())
    for name, g in groups.items():
        layer = layers.get(name)
        if not isinstance(layer, DGConv2d):
            raise ValueError(f"{name}: not a DGConv layer of {type(model).__name__}")
        if g < 1 or layer.in_channels % g or layer.out_channels % g:
            raise ValueError(f"{name}: {g} groups do not divide {layer.in_channels} -> {layer.out_channels} channels")
        conv = he_init_(nn.Conv2d(layer.in_channels, layer.out_channels, groups=g, **conv_geometry(layer)))
        parent, _, child = name.rpartition(".")
        setattr(layers[parent] if parent else model, child, conv)
    spec = getattr(model, "prunex_spec", None)
    if isinstance(spec, ModelSpec):
        model.prunex_spec = replace(spec, structure={"groups": dict(groups)})
    return model
