import re

from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.models import analytic_complexity, list_models, model_entry
from prunex.models.paper_tables import PAPER_ROWS

runner = CliRunner()


def _run(*args: str, columns: str = "80"):
    result = runner.invoke(app, list(args), env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    return result.output


def _digits_kwargs(name: str) -> dict:
    defaults = model_entry(name).defaults()
    return {k: v for k, v in (("num_classes", 10), ("in_chans", 1)) if k in defaults}


def test_models_lists_every_model_whole_at_80_columns_as_train_builds_it():
    from prunex.models.listing import all_listings

    text = _run("models")
    assert max(len(line) for line in text.splitlines()) <= 80, text
    flat = " ".join(text.split())
    for item in all_listings():  # nothing cut: every summary is there word for word
        assert " ".join(item.summary.split()) in flat, item.summary
    starts = [line.split()[0] for line in text.splitlines() if line and not line.startswith(" ")]
    for name in list_models():
        assert name in starts, (name, starts)
        assert f"{analytic_complexity(name, **_digits_kwargs(name)).params:,} weights" in text
    assert "`" not in "".join(line for line in text.splitlines() if line.startswith("    "))  # no raw reST
    assert "260,154 weights" in text  # what `prunex train` with no --model trains, said so
    for paper in ("MaskConnect", "Multi-Residual", "DGConv"):
        assert paper in text


def test_models_name_shows_one_model_in_full():
    text = _run("models", "maskconnect_cifar")
    assert "num_classes=10" in text and "in_chans=1" in text
    assert f"{analytic_complexity('maskconnect_cifar', num_classes=10, in_chans=1).params:,} weights" in text
    assert "resnext_cifar(" in text  # its bench reference
    result = runner.invoke(app, ["models", "nosuchnet"])
    assert result.exit_code == 2 and "unknown model 'nosuchnet'" in result.stderr


def test_models_papers_is_one_table_per_paper_with_numbered_notes():
    text = _run("models", "--papers")
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "858,292" in text and "10,187,354" in text and "differs" in text and "not comparable" in text
    headings = [line.strip() for line in text.splitlines() if line.strip() in {r.paper for r in PAPER_ROWS}]
    assert headings == list(dict.fromkeys(r.paper for r in PAPER_ROWS))
    for block in re.split(r"\n(?=\S)", text):  # each paper's table with its footnotes
        marks = set(re.findall(r"\[(\d+)\]", block.split("\n  [1]")[0]))
        for mark in marks:
            assert re.search(rf"^  \[{mark}\] \S", block, re.M), (mark, block)


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "models" in result.output
