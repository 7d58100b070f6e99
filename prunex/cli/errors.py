"""One line for every mistake a user can make, and an exit status that says which kind it was.

| exit | meaning |
|---|---|
| 0 | done |
| 2 | bad input: an option, a file or a directory (nothing was changed) |
| 3 | a result failed its numerical verification (nothing was shipped; earlier results kept) |
| 130 | interrupted (Ctrl-C); the message says what was kept |

Anything else is a bug in prunex and keeps its traceback. ``prunex --verbose`` prints the cause of a caught error
too. Errors, interruptions and :func:`warn` lines go to standard error; results to standard output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from prunex.artifacts.errors import InputError, NotEquivalentError

EXIT_USER_ERROR = InputError.exit_code  # each status is the error class's own
EXIT_NOT_EQUIVALENT = NotEquivalentError.exit_code
EXIT_INTERRUPTED = 130
NOTHING_WRITTEN = "nothing was written; earlier results are as they were"

verbose = False  # set by `prunex --verbose`


def one_line(err: BaseException) -> str:
    """The message of ``err`` without a worker process's traceback (DataLoader workers re-raise with it)."""
    text = str(err)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text


def _file_error(err: OSError) -> str:
    where = f" {err.filename}" if err.filename else ""
    return f"cannot use{where}: {err.strerror or err}"


def stderr_console() -> Console:
    """A console on the current standard error (looked up when it prints, so a test runner's capture sees it)."""
    return Console(stderr=True)


def usage_error(message: str) -> NoReturn:
    """An option the parser refused, said as every other mistake is (``error: ...``, exit 2)."""
    text = message.replace("Value error, ", "")  # typer's wording for a value outside an enum's words
    stderr_console().print(f"[bold red]error:[/bold red] {escape(text)}", soft_wrap=True)
    raise typer.Exit(EXIT_USER_ERROR)


@contextmanager
def handle_errors(interrupted: str | Callable[[], str] | None = None) -> Iterator[None]:
    """Map the errors a user can cause to one line on standard error and their exit status (see the module
    docstring).

    ``interrupted`` is what Ctrl-C leaves behind, in words, or a function that says it when it happens (default:
    nothing was written).
    """
    console = stderr_console()
    try:
        yield
    except NotEquivalentError as err:
        _show_cause(console)
        console.print(f"[bold red]not equivalent:[/bold red] {escape(one_line(err))}", soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    except (InputError, FileExistsError) as err:
        _show_cause(console)
        console.print(f"[bold red]error:[/bold red] {escape(one_line(err))}", soft_wrap=True)
        raise typer.Exit(getattr(err, "exit_code", EXIT_USER_ERROR)) from None
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError) as err:
        _show_cause(console)
        console.print(f"[bold red]error:[/bold red] {escape(_file_error(err))}", soft_wrap=True)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except KeyboardInterrupt:
        said = interrupted() if callable(interrupted) else interrupted
        console.print(f"[yellow]interrupted[/yellow]: {escape(said or NOTHING_WRITTEN)}", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _show_cause(console: Console) -> None:
    if verbose:
        console.print_exception()


def warn(message: str) -> None:
    stderr_console().print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)
