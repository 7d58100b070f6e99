"""Reading a typed record from the JSON object a file holds: the keys the record has fields for, under their current
names; keys a newer version added are left out (its reader is that version)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def from_fields(kind: type[T], data: dict[str, Any], renamed: dict[str, str] | None = None, **typed: Any) -> T:
    """``kind`` from the keys of ``data`` it has fields for (old names mapped by ``renamed``); ``typed`` gives the
    fields already converted to their types."""
    names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    values = {(renamed or {}).get(k, k): v for k, v in data.items()}
    return kind(**{**{k: v for k, v in values.items() if k in names}, **typed})


def read_record(path: Path, parse: Callable[[dict[str, Any]], T]) -> T | None:
    """``parse`` of the JSON object in the file at ``path``; None if there is none, or it is not what ``parse``
    reads (a missing key, a wrong type)."""
    data = read_json_object(path)
    try:
        return parse(data) if data is not None else None
    except (KeyError, TypeError, ValueError):
        return None


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in the file at ``path``; None if there is none or it is not a readable JSON object."""
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8")) if Path(path).is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None
