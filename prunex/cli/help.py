"""How ``--help`` reads on any terminal: options grouped by topic (typer's ``rich_help_panel``), every option name
and metavar whole, help text wrapped to the width and never cut, docstrings reflowed paragraph by paragraph.

Plain text rather than rich panels: a table of five columns leaves a few characters for the help at 80 columns.
"""

from __future__ import annotations

import enum
import inspect
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup

Parameter = Any  # typer's (vendored click) parameter: .opts, .secondary_opts, .type, .help, .metavar

NAME_COLUMN = 30  # an option whose name and metavar fit here gets its help beside it, else on the next lines
INDENT = 2
OPTIONS_PANEL = "Options"
_USAGE_ERRORS = {"UsageError", "BadParameter", "BadOptionUsage", "BadArgumentUsage", "NoSuchOption", "MissingParameter"}
_METAVARS = {"integer": "N", "integer range": "N", "float": "X", "float range": "X", "path": "PATH", "text": "TEXT"}


def wrap(text: str, width: int, indent: int, first_indent: int | None = None) -> list[str]:
    return textwrap.wrap(
        " ".join(text.split()),
        width=max(width, indent + 20),
        initial_indent=" " * (indent if first_indent is None else first_indent),
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def reflowed(text: str, width: int) -> list[str]:
    """A docstring's paragraphs, each joined and wrapped to ``width`` (indented blocks are kept as they are)."""
    lines: list[str] = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if lines:
            lines.append("")
        body = paragraph.replace("\b\n", "")
        if any(line.startswith(("  ", "|")) for line in body.splitlines()):
            lines += [" " * INDENT + line for line in body.splitlines()]
        else:
            lines += wrap(body, width, INDENT)
    return lines


def _value_type(param: Parameter) -> Any:
    """The Python type an option converts to (typer ≥ 0.2x keeps the annotation; older ones a click type)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is not None:
        args = getattr(annotation, "__args__", None)
        return args[0] if args and getattr(annotation, "__origin__", None) is list else annotation
    return getattr(param, "type", None)


def metavar(param: Parameter) -> str:
    """What follows the option's name: nothing for a flag, the choices of an enum, else N / X / PATH / TEXT."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return param.metavar
    kind = _value_type(param)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return "|".join(str(member.value) for member in kind)
    choices = getattr(kind, "choices", None)
    if choices:
        return "|".join(str(getattr(c, "value", c)) for c in choices)
    if isinstance(kind, type):
        return {bool: "BOOL", int: "N", float: "X", Path: "PATH"}.get(kind, "TEXT")
    return _METAVARS.get(getattr(kind, "name", ""), "TEXT")


def names(param: Parameter) -> str:
    """``-m, --model NAME``; ``--amp / --no-amp``; an argument as its upper-case name."""
    if isinstance(param, TyperArgument):
        return (param.metavar or param.name or "").upper()
    shown = ", ".join(sorted(param.opts, key=lambda o: (o.startswith("--"), o)))
    if param.secondary_opts:
        shown += " / " + ", ".join(param.secondary_opts)
    mv = metavar(param)
    return f"{shown} {mv}" if mv else shown


def definition_list(rows: Iterable[tuple[str, str]], width: int) -> list[str]:
    lines: list[str] = []
    for term, text in rows:
        head = " " * INDENT + term
        if len(head) < NAME_COLUMN - 1 and text:
            wrapped = wrap(text, width, NAME_COLUMN)
            lines.append(head.ljust(NAME_COLUMN) + wrapped[0].lstrip())
            lines += wrapped[1:]
        else:
            lines.append(head)
            lines += wrap(text, width, NAME_COLUMN) if text else []
    return lines


def panels(params: Iterable[Parameter]) -> dict[str, list[Parameter]]:
    """Parameters by help panel, in order of first appearance (arguments first)."""
    out: dict[str, list[Parameter]] = {}
    params = list(params)
    for param in params:
        if isinstance(param, TyperArgument):
            out.setdefault("Arguments", []).append(param)
    for param in params:
        if not isinstance(param, TyperArgument) and not getattr(param, "hidden", False):
            out.setdefault(getattr(param, "rich_help_panel", None) or OPTIONS_PANEL, []).append(param)
    return out


def _help_of(param: Parameter) -> str:
    return getattr(param, "help", None) or ""


class _Readable:
    """The help sections shared by commands and the group."""

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        if self.help:
            formatter.write_paragraph()
            formatter.write("\n".join(reflowed(self.help, formatter.width)) + "\n")

    def format_options(self, ctx: Any, formatter: Any) -> None:
        for title, params in panels(self.get_params(ctx)).items():
            formatter.write_paragraph()
            formatter.write(f"{title}:\n")
            rows = [(names(p), _help_of(p)) for p in params]
            formatter.write("\n".join(definition_list(rows, formatter.width)) + "\n")


class PrunexCommand(_Readable, TyperCommand):
    """A command whose ``--help`` reads at 80 columns."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """A value the parser refuses is one line, like every other mistake: the error and where help is, without
        the usage block above it."""
        try:
            return super().parse_args(ctx, args)
        except Exception as err:
            if type(err).__name__ not in _USAGE_ERRORS or getattr(err, "ctx", None) is None:
                raise
            from prunex.cli.errors import usage_error

            usage_error(f"{err.format_message()} (see `{err.ctx.command_path} --help`)")

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] CHECKPOINT`` (arguments by their upper-case names, not ``{checkpoint}``)."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                many = param.nargs != 1 or getattr(param, "multiple", False)
                pieces.append(names(param) + ("..." if many else ""))
        return pieces


class PrunexGroup(_Readable, TyperGroup):
    """The ``prunex`` group: its options, then its commands with their one-line summaries."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        super().format_options(ctx, formatter)
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        rows = [(name, cmd.get_short_help_str(limit=200)) for name, cmd in commands if cmd and not cmd.hidden]
        formatter.write_paragraph()
        formatter.write("Commands:\n" + "\n".join(definition_list(rows, formatter.width)) + "\n")
