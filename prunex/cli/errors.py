"""Turn the errors a user can cause (bad input, bad files) into one clear line and a non-zero exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from prunex.data import DatasetError
from prunex.models import UnknownModelError
from prunex.passes.serialization import SerializationError
from prunex.train.checkpoint import CheckpointError
from prunex.train.config import ConfigError

USER_ERRORS = (ConfigError, DatasetError, CheckpointError, UnknownModelError, FileExistsError, SerializationError)
EXIT_USER_ERROR = 2


@contextmanager
def handle_errors(console: Console) -> Iterator[None]:
    """Known user errors print ``error: …`` and exit 2; anything else is a bug and keeps its traceback."""
    try:
        yield
    except USER_ERRORS as err:
        console.print(f"[bold red]error:[/bold red] {escape(str(err))}")
        raise typer.Exit(EXIT_USER_ERROR) from None
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: the last complete epoch is in the run's checkpoint.pt; "
            "continue with `prunex train --resume RUN_DIR`"
        )
        raise typer.Exit(130) from None
