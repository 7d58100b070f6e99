"""A user's choice spelled as a word, converted once to its enum (imports nothing heavy: ``--help`` reads it).

Each vocabulary is a :class:`~enum.StrEnum`: typer takes it as an option's type, a JSON file stores its word, and
the library converts ``str | Enum`` to the member once, at the boundary (as torchvision's weight enums do).
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import TypeVar

from prunex.artifacts.errors import InputError

E = TypeVar("E", bound=Enum)


class Backend(StrEnum):
    """An inference runtime prunex times (``bench --backend``) and tunes for (``compress --target-backend``); what
    each needs and how it runs a case is :data:`prunex.runtime.backends.BACKENDS`."""

    EAGER = "eager"
    CUDA_GRAPHS = "cuda-graphs"
    COMPILE = "compile"
    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"


class TuneMode(StrEnum):
    """How latency-aware lowering measures: ``off`` keeps the learned structure (no tuner); ``cache`` chooses by
    measured time, reusing cached timings; ``full`` measures everything again."""

    OFF = "off"
    CACHE = "cache"
    FULL = "full"


class Exporter(StrEnum):
    """How a module becomes ONNX: ``dynamo`` (torch.export based) or ``legacy`` (TorchScript)."""

    DYNAMO = "dynamo"
    LEGACY = "legacy"


def choice_names(kind: type[Enum]) -> list[str]:
    return [member.value for member in kind]


def parse_choice(kind: type[E], value: E | str, what: str) -> E:
    """The member of ``kind`` that ``value`` spells; ValueError naming ``what`` and the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"unknown {what} {value!r} (choose from {', '.join(choice_names(kind))})") from None


def parse_option(kind: type[E], value: E | str, option: str, error: type[InputError] = InputError) -> E:
    """The member of ``kind`` that ``value`` spells; ``error`` (an InputError) naming ``option`` otherwise."""
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(choice_names(kind))
        raise error(f"{option} must be one of {names}, got {value!r}") from None
