from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.models import analytic_complexity, list_models

runner = CliRunner()


def test_models_lists_every_model_with_paper_and_parameter_count():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in list_models():
        assert name in result.output
        assert f"{analytic_complexity(name).params:,}" in result.output
    assert "MaskConnect" in result.output and "Multi-Residual" in result.output and "DGConv" in result.output


def test_models_papers_prints_the_comparison():
    result = runner.invoke(app, ["models", "--papers"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "858,292" in result.output and "10,187,354" in result.output
    assert "differs" in result.output and "not comparable" in result.output


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "models" in result.output
