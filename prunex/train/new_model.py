"""The model a new run trains: the registry's builder with the configuration's arguments and the dataset's shape."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from prunex.data import DatasetInfo
from prunex.models import create_model, model_entry
from prunex.train.config import ConfigError


def build_new_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """``create_model(name, **kwargs)``; arguments the builder refuses are a configuration error naming them."""
    try:
        return create_model(name, **kwargs)
    except TypeError as err:
        accepted = ", ".join(p for p in inspect.signature(model_entry(name).builder).parameters)
        raise ConfigError(f"{name} does not take these arguments ({err}); it takes: {accepted}") from None
    except ValueError as err:
        raise ConfigError(f"cannot build {name} with {kwargs}: {err}") from None


def model_kwargs_for(model: str, kwargs: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    """The model's kwargs with ``num_classes`` / ``in_chans`` taken from the dataset where the builder has them."""
    accepted = inspect.signature(model_entry(model).builder).parameters
    out = dict(kwargs)
    if "num_classes" in accepted:
        out.setdefault("num_classes", info.num_classes)
    if "in_chans" in accepted:
        out.setdefault("in_chans", info.in_chans)
    elif info.in_chans != 3:
        raise ConfigError(f"{model} takes 3-channel images; {info.name} has {info.in_chans}")
    return out
