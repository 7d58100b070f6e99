"""Model registry (torchvision / timm style): ``register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from prunex.artifacts.errors import InputError
from prunex.models.complexity import Complexity


class UnknownModelError(InputError, KeyError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])


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


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model. The result carries ``prunex_spec`` = {"name", "kwargs"} to rebuild it."""
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
