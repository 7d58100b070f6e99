"""The pictures hold the right number of blocks, edges, layers and links for models with known gates (checked by
parsing the SVG), and the text summary matches the model."""

import json
import re
import xml.etree.ElementTree as ET

import pytest
import torch
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.inspection import connectivity, draw, summarise
from prunex.models import count_parameters, create_model
from prunex.nn.branch_gates import BranchGates
from prunex.nn.sparse_aggregation import exponential_offsets
from tests.passes.helpers import set_dgconv_gates

pytest.importorskip("matplotlib", reason="the pictures need matplotlib (the plots extra)")


def svg_ids(path) -> list[str]:
    return [el.get("id") for el in ET.parse(path).iter() if el.get("id")]


def count(ids, pattern):
    return sum(1 for i in ids if re.fullmatch(pattern, i))


def known_maskconnect():
    model = create_model(  # per-block projections: a block is live only if a live block reads it (test_zoo: shared)
        "maskconnect_cifar", depth=20, bottleneck_width=4, cardinality=3, fan_in=1, projection="per_block"
    ).eval()
    masks = [
        [[1, 0, 0], [1, 0, 0], [0, 1, 0]],  # module 1 reads blocks 0, 0, 1 of module 0
        [[0, 1, 0], [0, 1, 0], [0, 0, 1]],  # module 2 reads 1, 1, 2 of module 1
        [[0, 0, 1], [0, 0, 1], [0, 0, 1]],  # module 3 reads only block 2 of module 2
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [1, 0, 0], [1, 0, 0]],  # module 5 reads only block 0 of module 4
    ]
    gates = [m for m in model.modules() if isinstance(m, BranchGates)]
    for g, mask in zip(gates, masks, strict=True):
        g.freeze()
        g.mask = torch.tensor(mask, dtype=torch.float32)
    return model


def test_connectivity_grid_and_active_branches(tmp_path):
    model = known_maskconnect()
    conn = connectivity(model)
    # backwards from the head: module 5 all; it reads only block 0 of module 4, which reads block 0 of module 3,
    # which reads block 2 of module 2, which reads block 2 of module 1, which reads block 1 of module 0
    expected_active = [
        [False, True, False],
        [False, False, True],
        [False, False, True],
        [True, False, False],
        [True, False, False],
        [True, True, True],
    ]
    assert conn.active == expected_active
    paths = draw(model, tmp_path)
    assert {p.name for p in paths} == {
        "connectivity.svg",
        "connectivity.png",
        "active_branches.svg",
        "active_branches.png",
    }
    ids = svg_ids(tmp_path / "connectivity.svg")
    assert count(ids, r"block-\d+-\d+-(active|pruned)") == 6 * 3
    assert count(ids, r"block-\d+-\d+-active") == sum(map(sum, expected_active))
    assert "block-0-2-pruned" in ids and "block-5-1-active" in ids
    assert count(ids, r"edge-[1-9]\d*-\d+-\d+-(active|pruned)") == 5 * 3  # K = 1: one input per block
    assert "edge-3-2-0-active" in ids  # module 3 block 0 reads module 2 block 2, and is alive
    assert count(ids, r"edge-0-stem-\d+-\w+") == 3 and count(ids, r"edge-head-\d+") == 3
    bars = svg_ids(tmp_path / "active_branches.svg")
    assert [i for i in bars if i.startswith("module-")] == [
        f"module-{m}-active-{sum(a)}" for m, a in enumerate(expected_active)
    ]


def test_dgconv_groups_per_layer(tmp_path):
    model = create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=4).eval()
    set_dgconv_gates(model, [[1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    draw(model, tmp_path, formats=("svg",))
    ids = svg_ids(tmp_path / "dgconv_groups.svg")
    assert [i for i in ids if i.startswith("layer-")] == ["layer-0-groups-4", "layer-1-groups-32", "layer-2-groups-1"]


def test_sparsenet_links(tmp_path):
    model = create_model("sparsenet_cifar", depth=16, growth=4).eval()  # 4 layers per stage
    draw(model, tmp_path, formats=("svg",))
    ids = svg_ids(tmp_path / "sparsenet_links.svg")
    per_stage = sum(len(exponential_offsets(n)) for n in range(1, 6))  # 4 layers + the stage output
    assert count(ids, r"link-\d+-\d+-\d+") == 3 * per_stage
    assert count(ids, r"node-\d+-\d+") == 3 * 6
    assert "link-0-0-4" in ids and "link-0-1-5" in ids  # layer 4 reads the input; the output reads layer 1


def test_feature_reuse_is_the_mean_absolute_weight_over_each_source_s_channels(tmp_path):
    """SparseNet Fig. 3: layer 3 of a stage concatenates outputs 2 (offset 1) and 1 (offset 2), in that order."""
    from prunex.inspection import feature_reuse

    torch.manual_seed(0)
    model = create_model("sparsenet_cifar", depth=16, growth=4).eval()  # 4 layers per stage, stem 8 channels
    stage = model.body[0]
    reuse = feature_reuse(model)
    assert [r.stage for r in reuse] == [0, 1, 2]
    w = stage.layers[2].body[2].weight.detach().abs()  # layer 3's conv reads [output 2 (4 ch), output 1 (4 ch)]
    expected = [None, float(w[:, 4:8].mean()), float(w[:, 0:4].mean())]
    assert reuse[0].weights[2] == pytest.approx(expected)
    assert reuse[0].weights[0] == [pytest.approx(float(stage.layers[0].body[2].weight.detach().abs().mean()))]
    draw(model, tmp_path, formats=("svg",))
    ids = svg_ids(tmp_path / "feature_reuse.svg")
    assert count(ids, r"reuse-\d+-\d+-\d+") == 3 * sum(len(exponential_offsets(n)) for n in range(1, 5))
    assert "reuse-0-3-2" in ids and "reuse-0-3-0" not in ids  # layer 3 reads outputs 2 and 1, not the input


def test_gate_dynamics_show_every_layer_s_groups_at_every_epoch(tmp_path):
    from prunex.inspection import gate_dynamics

    history = [
        {"epoch": 1, "groups": [1, 2], "zeta": 300.0, "budget_o": 100.0},
        {"epoch": 2, "groups": [2, 8], "zeta": 150.0, "budget_o": 100.0},
        {"epoch": 3, "groups": [4, 8], "zeta": 90.0, "budget_o": 100.0},
    ]
    dynamics = gate_dynamics([{"epoch": 0, "test_acc": 0.1}, *history])  # epochs without DGConv are left out
    assert dynamics.epochs == [1, 2, 3] and dynamics.zeta_over_budget == [3.0, 1.5, 0.9]
    model = create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=4).eval()
    draw(model, tmp_path, formats=("svg",), history=history)
    ids = svg_ids(tmp_path / "gate_dynamics.svg")
    cells = sorted(i for i in ids if i.startswith("groups-"))
    expected = [f"groups-{h['epoch']}-{layer}-{h['groups'][layer]}" for h in history for layer in (0, 1)]
    assert cells == sorted(expected)
    assert "zeta" in ids
    assert gate_dynamics([{"epoch": 1, "test_acc": 0.5}]) is None  # no DGConv: no picture


def test_summary_matches_the_model():
    model = known_maskconnect()
    summary = summarise(model)
    modules = summary["maskconnect"]["modules"]
    assert [m["active"] for m in modules] == [1, 1, 1, 1, 1, 3]
    assert modules[1]["reads"] == [[0], [0], [1]] and modules[0]["reads"] is None
    assert modules[0]["pruned"] == [0, 2]
    assert modules[5]["live_block_params"] == 3 * sum(p.numel() for p in model.stages[5].blocks[0].parameters())
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    announced = count_parameters(
        create_model("maskconnect_cifar", depth=20, bottleneck_width=4, cardinality=3, fan_in=1)
    )
    assert summary["gates"] == 0 and summary["frozen_gates"] == announced["gates"] == 5 * 3 * 3  # what train said


def test_frozen_real_valued_masks_are_reported_as_kept_at_their_values():
    from rich.console import Console

    from prunex.cli.views.inspect import print_summary

    lines = {}
    for kind in ("learned", "real_valued"):
        model = create_model("maskconnect_cifar", depth=11, bottleneck_width=4, cardinality=3, connectivity=kind)
        for m in model.modules():
            if isinstance(m, BranchGates):
                m.freeze()
        console = Console(record=True, width=200)
        print_summary(console, summarise(model))
        lines[kind] = console.export_text().splitlines()[0]
    assert lines["learned"].endswith("18 gates (18 frozen at top-K)")
    assert lines["real_valued"].endswith("18 gates (18 frozen at their values)")


def test_fixed_connectivity_has_no_gates_to_report():
    model = create_model(
        "maskconnect_cifar", depth=20, bottleneck_width=4, cardinality=3, fan_in=1, connectivity="fixed_random"
    )
    summary = summarise(model)
    assert summary["gates"] == 0 and summary["frozen_gates"] == 0


def test_cli_inspect_with_a_compressed_run(tmp_path):
    from tests.train.helpers import trained_and_compressed_run

    run = trained_and_compressed_run(tmp_path / "run")
    result = CliRunner().invoke(app, ["inspect", str(run)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "MaskConnect: C = 4, K = 2" in result.output
    summary = json.loads((run / "inspect" / "summary.json").read_text())
    assert summary["maskconnect"]["fan_in"] == 2
    assert (run / "inspect" / "connectivity.svg").exists() and (run / "inspect" / "active_branches.png").exists()
    assert "after compression" in result.output
    assert summary["compressed"]["params_after"] < summary["compressed"]["params_before"]


def test_compress_plots_writes_the_pictures_next_to_the_model(tmp_path):
    from prunex.train import train
    from tests.train.helpers import tiny_config

    run = tmp_path / "run"
    train(tiny_config(run, phases=tiny_config(run).phases[:1]))
    result = CliRunner().invoke(app, ["compress", str(run), "--plots"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert (run / "compressed" / "connectivity.svg").exists()


def test_without_matplotlib_the_text_summary_still_works(tmp_path, monkeypatch):
    from prunex.inspection import figures
    from prunex.train import train
    from tests.train.helpers import tiny_config

    def missing():
        raise figures.PlottingUnavailable('pictures need matplotlib: pip install "prunex[plots]"')

    monkeypatch.setattr(figures, "_pyplot", missing)
    run = tmp_path / "run"
    train(tiny_config(run, phases=tiny_config(run).phases[:1]))
    result = CliRunner().invoke(app, ["inspect", str(run)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "no pictures" in result.output and "prunex[plots]" in result.output
    assert (run / "inspect" / "summary.json").exists() and not list((run / "inspect").glob("*.svg"))


@pytest.mark.slow  # two epochs of a small G-ResNeXt (~6 s); the picture itself is checked by default above
def test_inspect_draws_a_dgconv_run_s_gate_dynamics_from_its_history(tmp_path):
    from prunex.train import Phase, train
    from prunex.workflows import inspect_run
    from tests.train.helpers import tiny_config

    kwargs = {"depth": 11, "cardinality": 4, "bottleneck_width": 4}
    phases = (Phase("learn-groups", 2, 0.05, gate_lr=0.05),)
    config = tiny_config(tmp_path / "run", model="g_resnext_cifar", model_kwargs=kwargs, phases=phases, budget=4.0)
    train(config)
    result = inspect_run(tmp_path / "run", formats=("svg",))
    ids = svg_ids(result.out / "gate_dynamics.svg")
    assert count(ids, r"groups-[12]-\d+-\d+") == 2 * 3  # two epochs of three DGConv layers
