"""``--help`` reads on an 80-column terminal and comes without importing torch."""

import re
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from prunex.cli.app import app

COMMANDS = ["train", "compress", "export", "bench", "inspect", "models"]


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def _options(command: str) -> list:
    group = typer.main.get_command(app)
    ctx = group.make_context("prunex", [command, "--help"], resilient_parsing=True)
    cmd = group.get_command(ctx, command)
    return cmd.get_params(cmd.make_context(command, [], parent=ctx, resilient_parsing=True))


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns_and_cuts_nothing(command):
    text = _help(*([command] if command else []))
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    for marker in ("<bool>", "<str>", "<int", "<float", "<path>", "<list"):
        assert marker not in text, (marker, text)
    assert "{" not in text.splitlines()[0], text.splitlines()[0]  # arguments as NAME, not {name}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_name_appears_whole_and_flags_take_no_value(command):
    text = _help(command)
    for param in _options(command):
        if param.name == "help":
            continue
        if not param.opts[0].startswith("-"):  # an argument: its upper-case name, in the usage line too
            assert param.name.upper() in text.splitlines()[0], text.splitlines()[0]
            continue
        for name in [*param.opts, *param.secondary_opts]:
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), (name, text)
        if getattr(param, "is_flag", False):
            long = next(o for o in param.opts if o.startswith("--"))
            own = re.compile(rf"^  (-\w, )?{re.escape(long)}(?![\w-])")
            line = next(ln for ln in text.splitlines() if own.match(ln))
            after = line.split(long, 1)[1].split("  ")[0].strip()
            assert after in ("", "/ " + ", ".join(param.secondary_opts)), (param.opts, line)


def test_the_usage_lines_name_what_each_command_takes():
    assert _help().splitlines()[0] == "Usage: prunex [OPTIONS] COMMAND [ARGS]..."
    assert _help("compress").splitlines()[0] == "Usage: prunex compress [OPTIONS] CHECKPOINT"
    assert _help("bench").splitlines()[0] == "Usage: prunex bench [OPTIONS] MODELS..."


def test_train_help_is_grouped_by_topic():
    sections = re.findall(r"^(\w[\w ]*):$", _help("train"), re.M)
    assert sections[:5] == ["Model", "Data", "Schedule", "Run directory", "Execution"], sections


def test_help_does_not_import_torch_onnx_or_onnxruntime():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from prunex.cli.app import app\n"
        f"for args in [[], *[[c] for c in {COMMANDS!r}]]:\n"
        "    assert CliRunner().invoke(app, [*args, '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--epochs", "0"], "'--epochs'"),
        (["compress"], "Missing argument"),
        (["train", "--nosuch"], "--nosuch"),
    ],
)
def test_a_value_the_parser_refuses_is_one_line_that_says_where_help_is(args, words):
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert words in lines[0] and f"prunex {args[0]} --help" in lines[0] and "Usage:" not in result.output
