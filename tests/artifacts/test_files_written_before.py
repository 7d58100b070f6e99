"""Files prunex 0.6.0 wrote (``tests/fixtures/v0_6_0``: checkpoints of every CIFAR family, a DGConv run and the
plain network retrained from its structure, compressed models with their reports, a bench.json) still load and
compute what they computed."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from prunex.artifacts.bench_report import read_bench
from prunex.artifacts.checkpoint import load_checkpoint
from prunex.artifacts.compressed_model import load_compressed
from prunex.artifacts.compression_report import read_report
from prunex.artifacts.model_spec import ModelSpec
from prunex.cli.app import app
from prunex.models.from_checkpoint import model_from_checkpoint
from prunex.passes.graph import freeze

FIXTURES = Path(__file__).parent.parent / "fixtures" / "v0_6_0"
RUNS = ["maskconnect", "learned_groups", "structure", "multiresnet", "sparsenet"]


@pytest.mark.parametrize("run", RUNS)
def test_a_checkpoint_written_by_0_6_loads_and_classifies(run):
    model, ckpt = model_from_checkpoint(FIXTURES / run)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    assert ckpt["spec"]["name"] in {"maskconnect_cifar", "resnext_cifar", "multiresnet_cifar", "sparsenet_cifar"}


def test_what_a_0_6_run_learned_is_what_its_checkpoint_rebuilds():
    learned, _ = model_from_checkpoint(FIXTURES / "learned_groups")
    retrained, ckpt = model_from_checkpoint(FIXTURES / "structure")
    deployed = [m.groups for m in retrained.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert deployed and ckpt["spec"]["structure"]["groups"]
    assert sorted(set(deployed)) == sorted({g for g in ckpt["spec"]["structure"]["groups"].values() if g > 1})


@pytest.mark.parametrize("run", ["maskconnect", "learned_groups"])
def test_a_compressed_model_written_by_0_6_computes_its_checkpoint(run):
    model, _ = model_from_checkpoint(FIXTURES / run)
    compressed = load_compressed(FIXTURES / run / "compressed")
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = freeze(model)(x), compressed(x)
    assert torch.allclose(got, expected, atol=1e-4 * float(expected.abs().max()), rtol=0)


@pytest.mark.parametrize("run", ["maskconnect", "learned_groups"])
def test_a_report_written_by_0_6_reads_whole(run):
    report = read_report(FIXTURES / run / "compressed" / "report.json")
    assert report is not None
    assert report.totals.macs_after <= report.totals.macs_before and report.reference is not None
    assert [p.name for p in report.passes][0] == "frozen" and report.checkpoint and report.calibration
    assert bool(report.groups) == (run == "learned_groups")
    assert report.to_json() == json.loads((FIXTURES / run / "compressed" / "report.json").read_text())


def test_inspect_reads_a_0_6_run(tmp_path):
    result = CliRunner().invoke(
        app, ["inspect", str(FIXTURES / "learned_groups"), "-o", str(tmp_path / "i"), "--no-plots"]
    )
    assert result.exit_code == 0, result.output
    assert "after compression" in result.output


def test_a_bench_written_by_0_6_reads_whole():
    path = FIXTURES / "maskconnect" / "bench" / "bench.json"
    bench = read_bench(path)
    assert bench is not None and bench.measured and all(r.median_ms > 0 for r in bench.measured)
    assert {r.kind for r in bench.measured} == {"gated", "compressed"} and bench.speedups
    assert bench.to_json() == json.loads(path.read_text())


@pytest.mark.parametrize("run", ["sparsenet", "maskconnect"])
def test_a_0_6_checkpoints_hand_written_tail_loads_into_the_classifier_head(run):
    state = load_checkpoint(FIXTURES / run)["state_dict"]
    assert "fc.weight" in state and not any(k.startswith("head.") for k in state)  # written before the head
    model, _ = model_from_checkpoint(FIXTURES / run)
    assert torch.equal(model.head.fc.weight, state["fc.weight"]) and torch.equal(model.head.fc.bias, state["fc.bias"])
    if run == "sparsenet":  # a pre-activation network: its final BN-ReLU is the head's
        assert torch.equal(model.head.norm[0].running_var, state["head_norm.0.running_var"])


@pytest.mark.parametrize("run", RUNS)
def test_a_0_6_model_spec_reads_as_a_model_spec_and_writes_back_the_same(run):
    raw = load_checkpoint(FIXTURES / run)["spec"]
    spec = ModelSpec.from_dict(raw)
    assert spec.to_dict() == raw
    assert (spec.learn_groups is not None) == (run in ("learned_groups", "structure"))  # a structure replays both
    assert (spec.structure is not None) == (run == "structure")
    model, _ = model_from_checkpoint(FIXTURES / run)
    assert model.prunex_spec.learn_groups == spec.learn_groups and model.prunex_spec.structure == spec.structure
