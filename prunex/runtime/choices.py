"""A user's choice spelled as a word, converted once to its enum (imports nothing heavy: ``--help`` reads it)."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

E = TypeVar("E", bound=Enum)


def choice_names(kind: type[Enum]) -> list[str]:
    return [member.value for member in kind]


def parse_choice(kind: type[E], value: E | str, what: str) -> E:
    """The member of ``kind`` that ``value`` spells; ValueError naming ``what`` and the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"unknown {what} {value!r} (choose from {', '.join(choice_names(kind))})") from None
