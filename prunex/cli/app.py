"""The ``prunex`` command: train → compress → export → bench, and ``models`` to list the zoo."""

from __future__ import annotations

import logging

import typer

from prunex.cli import bench_cmd, compress_cmd, errors, export_cmd, inspect_cmd, models_cmd, train_cmd
from prunex.cli.help import PrunexCommand, PrunexGroup
from prunex.version import __version__

app = typer.Typer(
    name="prunex",
    help="A deployment compiler for CNNs with learned connectivity: train a gated network, compile the learned "
    "structure away, export it, and measure it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain, reflowed help (prunex.cli.help) that reads at 80 columns
    cls=PrunexGroup,
)
app.command("train", cls=PrunexCommand)(train_cmd.train)
app.command("compress", cls=PrunexCommand)(compress_cmd.compress)
app.command("export", cls=PrunexCommand)(export_cmd.export)
app.command("bench", cls=PrunexCommand)(bench_cmd.bench)
app.command("inspect", cls=PrunexCommand)(inspect_cmd.inspect)
app.command("models", cls=PrunexCommand)(models_cmd.models)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"prunex {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", help="Also print the cause (traceback) of an error."),
) -> None:
    """prunex: train → compress → export → bench.

    Exit status: 0 done, 2 bad input (nothing changed), 3 a result failed its numerical verification (earlier
    results kept), 130 interrupted.
    """
    errors.verbose = verbose
    # torch says this on every CUDA build run on a machine without a GPU when compile or export loads its C++
    # extension helpers; it tells a prunex user nothing (`prunex bench` says which backends need CUDA)
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


def main() -> None:
    app()
