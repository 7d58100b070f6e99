import json

import pytest
import torch
from torch import fx, nn

from prunex.artifacts.compressed_model import SerializationError, load_compressed, save_compressed
from prunex.nn.dgconv import DGConv2d
from prunex.passes import PassRunner, PassVerificationError, compress
from prunex.passes.graph import finish, freeze, trace
from prunex.passes.runner import InPlaceWriteError
from tests.passes.helpers import FunctionPass, set_dgconv_gates


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5)
    ).eval()


def perturb_second_conv(gm: fx.GraphModule) -> fx.GraphModule:
    """A deliberately broken pass."""
    layer = gm.get_submodule("4")
    layer.weight = nn.Parameter(layer.weight.detach() * 1.01, requires_grad=False)
    return finish(gm)


def copy_second_conv(gm: fx.GraphModule) -> fx.GraphModule:
    """An exact pass that replaces a weight by an equal copy."""
    layer = gm.get_submodule("4")
    layer.weight = nn.Parameter(layer.weight.detach().clone(), requires_grad=False)
    return finish(gm)


def perturb_in_place(gm: fx.GraphModule) -> fx.GraphModule:
    """A pass that writes into a weight instead of replacing it."""
    with torch.no_grad():
        gm.get_submodule("4").weight.mul_(1.01)
    return finish(gm)


def test_a_pass_that_breaks_equivalence_stops_the_pipeline_and_names_itself_and_the_layer():
    gm = trace(freeze(small_net()))
    runner = PassRunner(torch.randn(16, 3, 4, 4))
    with pytest.raises(PassVerificationError, match="'broken'.*first diverging layer: 4") as err:
        runner.run(gm, [FunctionPass("noop", finish), FunctionPass("broken", perturb_second_conv)])
    assert err.value.report["failed_pass"] == "broken"
    assert err.value.report["first_diverging_layer"] == "4"
    assert [p["name"] for p in err.value.report["passes"]] == ["frozen", "noop", "broken"]


def test_a_pass_that_writes_into_a_shared_tensor_is_refused():
    """The runner's copies (and ``freeze``'s) share weights, so a pass must replace a tensor, never write into it."""
    model = small_net()
    gm = trace(freeze(model))
    assert gm.get_submodule("4").weight.data_ptr() == model[4].weight.data_ptr()  # no copy of the weights
    with pytest.raises(InPlaceWriteError, match="'in_place' wrote into 1 tensor"):
        PassRunner(torch.randn(4, 3, 4, 4)).run(gm, [FunctionPass("in_place", perturb_in_place)])


def test_a_pass_that_changes_nothing_is_recorded_without_running_the_network():
    gm = trace(freeze(small_net()))
    runner = PassRunner(torch.randn(4, 3, 4, 4))
    calls = []
    gm.register_forward_hook(lambda *_: calls.append(1))
    runner.run(gm, [FunctionPass("noop", finish), FunctionPass("copy", copy_second_conv)])
    records = {r.name: r for r in runner.records}
    assert not records["noop"].modified and records["copy"].modified and records["copy"].changed == ["4"]
    assert records["noop"].max_abs_err == 0.0 and records["noop"].params == records["frozen"].params
    assert len(calls) == 4  # the frozen network and the one pass that changed it: the batch, one sample for MACs


def test_a_gather_nothing_can_absorb_stays_and_is_reported():
    model = nn.Sequential(DGConv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    set_dgconv_gates(model, [[1, 0, 1]])  # groups of non-adjacent channels
    gm, report = compress(model, torch.randn(4, 8, 6, 6))
    # the input's: no layer before it to absorb it; the report says which orders meet there
    assert [g.forced_by for g in report.gathers_remaining] == ["the network input vs 0"]
    with torch.no_grad():
        x = torch.randn(3, 8, 6, 6)
        torch.testing.assert_close(gm(x), model(x), rtol=0, atol=1e-5)


def test_compressed_model_round_trips_through_json_and_safetensors(tmp_path):
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        DGConv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()
    set_dgconv_gates(model, [[0, 1, 0]])
    gm, _ = compress(model, torch.randn(4, 3, 6, 6))
    save_compressed(gm, tmp_path, {"note": "test"})
    loaded = load_compressed(tmp_path)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(loaded(x), gm(x), rtol=0, atol=0)
    assert {type(m).__module__.split(".")[0] for m in loaded.modules()} == {"torch"}


def test_loading_refuses_what_the_allow_list_does_not_hold(tmp_path):
    gm, _ = compress(small_net(), torch.randn(4, 3, 4, 4))
    save_compressed(gm, tmp_path, {})
    spec = json.loads((tmp_path / "model.json").read_text())
    spec["graph"][1]["op"], spec["graph"][1]["target"] = "call_function", "os.system"
    (tmp_path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(SerializationError, match="os.system is not allowed"):
        load_compressed(tmp_path)
    with pytest.raises(SerializationError, match="not a compressed model"):
        load_compressed(tmp_path / "nowhere")


def test_saving_refuses_layers_outside_the_allow_list(tmp_path):
    graph = fx.Graph()
    x = graph.placeholder("x")
    graph.output(graph.call_module("shuffle", (graph.call_module("conv", (x,)),)))
    gm = fx.GraphModule({"conv": nn.Conv2d(4, 4, 1), "shuffle": nn.PixelShuffle(2)}, graph)
    with pytest.raises(SerializationError, match="shuffle is a PixelShuffle"):
        save_compressed(gm, tmp_path, {})
