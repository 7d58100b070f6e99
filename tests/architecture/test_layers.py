"""The package's layers only look down, and no module imports itself round a circle.

Read from the source (every ``import`` and ``from … import``, at module level or inside functions): an import
from package A into package B is allowed only if B's layer is below A's. ``prunex.artifacts`` and
``prunex.runtime`` are the bottom; ``prunex.cli`` and the package facade (``prunex/__init__.py``) the top.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import prunex

ROOT = Path(prunex.__file__).parent
LAYERS = {
    "version": 0,
    "artifacts": 0,
    "runtime": 0.5,  # the bottom layer too; its ONNX and TensorRT runners raise artifacts' InputError
    "nn": 1,
    "models": 2,
    "data": 3,
    "train": 4,
    "passes": 5,
    "inspection": 5,
    "integrations": 5,
    "exporters": 6,
    "benchmarking": 7,
    "workflows": 8,
    "cli": 9,
    "": 10,  # prunex/__init__.py, the facade
    "__main__": 11,
}


BOTTOM = {"version", "artifacts", "runtime"}
# The packages each package may import (besides itself and the bottom layer): the layers say "only down"; this
# says which downward edges exist on purpose, so a new one is a decision, not an accident.
ALLOWED = {
    "version": set(),
    "artifacts": set(),
    "runtime": set(),
    "nn": set(),
    "models": {"nn"},
    "data": set(),  # datasets know nothing of networks
    "train": {"nn", "models", "data"},
    "passes": {"nn"},  # the compiler never imports the trainer, the data or the model zoo
    "inspection": {"nn", "models"},
    "integrations": {"train"},  # a StructureSchedule in other people's training loops
    "exporters": {"models", "data", "passes"},
    "benchmarking": set(),  # the benchmark harness stands on the runtime alone
    "workflows": {"models", "data", "train", "passes", "inspection", "exporters", "benchmarking"},
    "cli": {"workflows", "models", "train", "passes", "exporters", "benchmarking"},  # views show what they return
    "": {"nn", "models", "train", "passes", "workflows"},
    "__main__": {"cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prunex"):
                targets = [
                    _resolve(f"{node.module}.{a.name}", modules) or _resolve(node.module, modules) for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [_resolve(a.name, modules) for a in node.names if a.name.startswith("prunex")]
            graph[name] |= {t for t in targets if t and t != name}
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    assert {_package(m) for m in _modules()} <= set(LAYERS)


def test_imports_only_look_down():
    upward = sorted(
        f"{a} → {b}"
        for a, targets in import_graph().items()
        for b in targets
        if _package(a) != _package(b) and LAYERS[_package(b)] >= LAYERS[_package(a)]
    )
    assert not upward, "\n".join(upward)


def package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for a, targets in import_graph().items():
        for b in targets:
            if _package(a) != _package(b):
                edges[_package(a)].add(_package(b))
    return edges


def test_each_package_imports_only_the_packages_it_is_allowed():
    extra = {pkg or "prunex": sorted(used - ALLOWED[pkg] - BOTTOM) for pkg, used in package_edges().items()}
    assert not any(extra.values()), {k: v for k, v in extra.items() if v}


def test_no_module_imports_itself_round_a_circle():
    graph = import_graph()
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    # a package's __init__ re-exporting its modules is not a circle of code: drop edges into a package facade
    real = [c for c in cycles if not all(_is_facade_cycle(graph, c, m) for m in c)]
    assert not real, real


def _is_facade_cycle(graph, component, module):
    return module in {_facade(m) for m in component}


def _facade(module: str) -> str:
    return module.rsplit(".", 1)[0]


def test_no_command_imports_another():
    graph = import_graph()
    commands = [m for m in graph if m.startswith("prunex.cli.") and m.endswith("_cmd")]
    crossing = sorted(f"{a} → {b}" for a in commands for b in graph[a] if b in commands)
    assert not crossing, crossing


@pytest.mark.slow  # a bench over every CPU backend and a run's pictures (~12 s)
def test_pictures_and_benchmarks_leave_no_figure_and_no_temporary_directory(tmp_path):
    """A bench over every CPU backend and the pictures of a run close every matplotlib figure and remove the
    ONNX export directory they made."""
    import glob
    import tempfile

    import matplotlib.pyplot as plt
    import torch

    from prunex.benchmarking.run import BenchModel, BenchSettings, run_grid
    from prunex.inspection import draw_pictures
    from prunex.models import create_model
    from prunex.passes.graph import freeze

    model = create_model("maskconnect_cifar", depth=11, bottleneck_width=4, cardinality=4, fan_in=2, in_chans=1)
    model = freeze(model)
    before = set(glob.glob(f"{tempfile.gettempdir()}/prunex-bench-*"))
    settings = BenchSettings(torch.device("cpu"), ["eager", "onnxruntime"], ["fp32"], [1], False, 0, 1)
    rows = run_grid([BenchModel("m", "gated", "g", model, (1, 8, 8))], settings).results
    assert all(r.ok for r in rows)
    assert set(glob.glob(f"{tempfile.gettempdir()}/prunex-bench-*")) == before
    paths, missing = draw_pictures(model, tmp_path, None, ("png",))
    assert paths and missing is None
    assert plt.get_fignums() == []
