"""Model registry (torchvision / timm style): ``register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from prunex.artifacts.model_spec import ModelSpec
from prunex.models.complexity import Complexity
from prunex.models.errors import UnknownModelError
from prunex.models.external import external_builder, is_external
from prunex.models.family import Family, Reference
from prunex.nn.fused_gates import fuse_gates_if_gated


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    paper: str
    complexity: Callable[..., Complexity]
    legacy_defaults: dict[str, Any] = field(default_factory=dict)  # see register_model
    image_size: int = 32  # the side of the images its paper trains it on (what its listed MACs are for)
    family: Family = Family.OTHER
    reference: Callable[[dict[str, Any]], Reference | None] | None = None
    mini_imagenet_stem: bool = False  # takes stem_pool: the max-pool stem MaskConnect's Table 6 adds at 64×64

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.builder) or "").splitlines()[0]

    def defaults(self) -> dict[str, Any]:
        """The builder's keyword arguments and their defaults."""
        params = inspect.signature(self.builder).parameters.values()
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    *,
    paper: str,
    complexity: Callable[..., Complexity],
    family: Family,
    reference: Callable[[dict[str, Any]], Reference | None] | None = None,
    mini_imagenet_stem: bool = False,
    legacy_defaults: dict[str, Any] | None = None,
    image_size: int = 32,
):
    """Register a builder under its function name, with its family's facts: ``family`` (which recipes train it),
    ``reference`` (the network users would deploy instead, from the model's keyword arguments; None: none),
    ``mini_imagenet_stem`` (its Mini-ImageNet form adds a max-pool stem).

    ``complexity`` receives every keyword argument of the builder, defaults filled in. ``legacy_defaults`` names
    arguments added after specs were first written, with the value a spec that omits them meant: such an argument
    is always written into a new model's spec, and :func:`rebuild_kwargs` fills the old value into one without it.
    ``image_size``: the side of the paper's images (32 for CIFAR, 224 for ImageNet), at which MACs are listed.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(
            name,
            builder,
            paper,
            complexity,
            dict(legacy_defaults or {}),
            image_size,
            family,
            reference,
            mini_imagenet_stem,
        )
        return builder

    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def registered(name: str) -> ModelEntry | None:
    """The entry of a registered model; None for any other name (``torchvision:NAME``, ``module:function``)."""
    return _REGISTRY.get(name)


def model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None


def _check_kwargs(entry: ModelEntry, kwargs: dict[str, Any]) -> None:
    allowed = set(inspect.signature(entry.builder).parameters)
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"{entry.name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}")


def builder_of(name: str) -> Callable[..., nn.Module]:
    """The builder of a registered model, of ``torchvision:NAME`` or of ``module:function``."""
    return external_builder(name) if is_external(name) else model_entry(name).builder


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model, a torchvision classifier (``torchvision:resnet50``, random weights) or a user's own
    (``my_package.models:build``). The result carries ``prunex_spec`` (a :class:`ModelSpec`) to rebuild it, and a
    gated network fuses its own gates in training (:func:`~prunex.nn.fuse_gates`): nothing to call in a loop."""
    if is_external(name):
        model = external_builder(name)(**kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError(f"{name} returned a {type(model).__name__}, not a torch.nn.Module")
    else:
        entry = model_entry(name)
        _check_kwargs(entry, kwargs)
        model = entry.builder(**kwargs)
        defaults = entry.defaults()
        kwargs = {**kwargs, **{k: defaults[k] for k in entry.legacy_defaults if k not in kwargs}}  # register_model
    model.prunex_spec = ModelSpec(name, dict(kwargs))
    return fuse_gates_if_gated(model)


def rebuild_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments that rebuild a model from a spec: ``kwargs`` with the registry's legacy defaults for the
    arguments an older prunex did not write (a 0.3 MaskConnect checkpoint means ``projection="per_block"``)."""
    if is_external(name) or name not in _REGISTRY:
        return dict(kwargs)
    return {**_REGISTRY[name].legacy_defaults, **kwargs}


def analytic_complexity(name: str, **kwargs: Any) -> Complexity:
    """Parameters, gates and FLOPs of a registered model, computed without building it."""
    entry = model_entry(name)
    _check_kwargs(entry, kwargs)
    return entry.complexity(**{**entry.defaults(), **kwargs})
