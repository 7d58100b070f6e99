"""Optional packages: imported when an integration needs them, with one line that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from prunex.artifacts.errors import InputError


class MissingExtraError(InputError, ImportError):
    """An optional package prunex needs for what was asked is not installed."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or a :class:`MissingExtraError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: install prunex's {extra!r} extra "
            f'(pip install -e ".[{extra}]" in prunex\'s checkout)'
        ) from err
