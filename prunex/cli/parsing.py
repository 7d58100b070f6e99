"""Option values the commands take as text: comma-separated lists and ``key=value`` model arguments."""

from __future__ import annotations

import ast
from typing import Any

import typer

from prunex.artifacts.errors import InputError


def comma_list(value: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``."""
    return [v.strip() for v in value.split(",") if v.strip()]


def comma_ints(value: str, option: str) -> list[int]:
    try:
        return [int(v) for v in comma_list(value)]
    except ValueError:
        raise InputError(f"{option} takes comma-separated integers, got {value!r}") from None


def model_args(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are Python literals (``depth=29``, ``growth=(16,32,64)``) or strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--model-arg")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def given_arguments(ctx: typer.Context, skip: set[str]) -> list[str]:
    """The options of ``ctx`` that came from the command line, written out again (for a command that starts
    itself in other processes); ``skip`` names parameters to leave out."""
    argv: list[str] = []
    for param in ctx.command.params:
        name = param.name
        source = ctx.get_parameter_source(name)
        if name in skip or getattr(source, "name", None) != "COMMANDLINE":
            continue
        value, opt = ctx.params[name], param.opts[0]
        if getattr(param, "is_flag", False):
            argv += [opt] if value else list(param.secondary_opts[:1])
        elif getattr(param, "multiple", False):
            argv += [part for v in value for part in (opt, str(v))]
        elif not opt.startswith("-"):
            argv.append(str(value))
        else:
            argv += [opt, str(value)]
    return argv
