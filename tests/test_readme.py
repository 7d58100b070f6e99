"""The README's Python example runs as written, in an empty directory, and writes what its comments say."""

import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_block(after_heading: str) -> str:
    """The first ```python block under ``after_heading`` in the README."""
    text = README.read_text()
    start = text.index(after_heading)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block under {after_heading!r}"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(python_block("### From Python"), "README.md", "exec"), scope)
    assert scope["result"].run_dir == Path("runs/r") and (tmp_path / "runs/r/checkpoint.pt").is_file()
    assert (tmp_path / "runs/r/compressed/model.safetensors").is_file()
    assert all(o.report.passed for o in scope["outcomes"]) and (tmp_path / "model.onnx").is_file()
    rows = json.loads((tmp_path / "bench" / "bench.json").read_text())["results"]
    assert {r["backend"] for r in rows if r["status"] == "ok"} == {"eager", "onnxruntime"}
    assert scope["bench"].out == Path("bench")
    assert (tmp_path / "runs/r18/checkpoint.pt").is_file()


def test_the_readme_python_example_calls_the_package_functions(tmp_path):
    """The names the example calls are the functions of the package even after its subpackages are imported
    (a subpackage named like a function would replace it: ``prunex.bench`` once did)."""
    import importlib
    import pkgutil

    import prunex

    for info in pkgutil.iter_modules(prunex.__path__):
        if info.name != "__main__":
            importlib.import_module(f"prunex.{info.name}")
    called = set(re.findall(r"prunex\.(\w+)\(", python_block("### From Python")))
    assert called >= {"train_run", "compress_run", "inspect_run", "export", "bench", "load_compressed"}
    for name in called:
        assert callable(getattr(prunex, name)), f"prunex.{name} is {getattr(prunex, name)!r}"


@pytest.mark.slow  # four epochs of digits in a plain loop, two in Lightning (~40 s)
def test_the_readme_own_loop_examples_run_as_written(tmp_path, monkeypatch, capsys):
    from prunex.nn import DGConv2d
    from prunex.nn.branch_gates import BranchGates

    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(python_block("### In a plain PyTorch loop"), "README.md", "exec"), scope)
    assert "test accuracy" in capsys.readouterr().out and scope["accuracy"] > 0.8
    assert all(m.frozen for m in scope["model"].modules() if isinstance(m, BranchGates))  # the recipe froze them
    assert scope["report"].totals.macs_after < scope["report"].totals.macs_before
    pytest.importorskip("pytorch_lightning", reason="the lightning extra is not installed")
    scope = {}
    exec(compile(python_block("### In PyTorch Lightning"), "README.md", "exec"), scope)
    gates = [m.gate for m in scope["net"].model.modules() if isinstance(m, DGConv2d) and m.num_gates]
    assert scope["trainer"].current_epoch == 2 and any(float(g.abs().max()) > 1e-6 for g in gates)  # they learned
