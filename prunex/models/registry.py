"""Model registry (torchvision / timm style): ``register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from prunex.models.complexity import Complexity
from prunex.models.errors import UnknownModelError
from prunex.models.external import external_builder, is_external


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    paper: str
    complexity: Callable[..., Complexity]

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.builder) or "").splitlines()[0]

    def defaults(self) -> dict[str, Any]:
        """The builder's keyword arguments and their defaults."""
        params = inspect.signature(self.builder).parameters.values()
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(*, paper: str, complexity: Callable[..., Complexity]):
    """Register a builder under its function name.

    ``complexity`` receives every keyword argument of the builder, defaults filled in.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, paper, complexity)
        return builder

    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


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
    (``my_package.models:build``). The result carries ``prunex_spec`` = {"name", "kwargs"} to rebuild it."""
    if is_external(name):
        model = external_builder(name)(**kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError(f"{name} returned a {type(model).__name__}, not a torch.nn.Module")
    else:
        entry = model_entry(name)
        _check_kwargs(entry, kwargs)
        model = entry.builder(**kwargs)
    model.prunex_spec = {"name": name, "kwargs": dict(kwargs)}
    return model


def analytic_complexity(name: str, **kwargs: Any) -> Complexity:
    """Parameters, gates and FLOPs of a registered model, computed without building it."""
    entry = model_entry(name)
    _check_kwargs(entry, kwargs)
    return entry.complexity(**{**entry.defaults(), **kwargs})
