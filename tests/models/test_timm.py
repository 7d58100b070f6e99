"""timm networks by name (``timm:NAME``, the ``timm`` extra): built with random weights or the user's own, their
convolutions learn their grouping (timm's conv variants replaced or skipped with the reason), and they compress and
export to ONNX exactly."""

import sys

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.models import create_model, learn_groups
from prunex.models.errors import UnknownModelError
from prunex.models.learn_groups import OWN_FORWARD
from prunex.nn.dgconv import DGConv2d
from prunex.runtime.optional import MissingExtraError
from tests.models.test_learn_groups import _compresses_exactly_and_exports
from tests.passes.helpers import random_dgconv_gates, randomise_batchnorm

timm = pytest.importorskip("timm", reason="the timm extra is not installed")


def _one_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_timm_model_by_name_is_timm_s_network_with_the_datasets_shape():
    model = create_model("timm:test_resnet", num_classes=7, in_chans=1)
    assert type(model).__module__.startswith("timm.") and model.prunex_spec.name == "timm:test_resnet"
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)


def test_a_timm_name_that_does_not_exist_is_one_line_with_similar_names(tmp_path):
    with pytest.raises(UnknownModelError, match="timm has no model 'resnet5000'; similar names: .*resnet"):
        create_model("timm:resnet5000")
    line = _one_line(CliRunner().invoke(app, ["train", "--model", "timm:resnet5000", "--out", str(tmp_path / "r")]))
    assert "timm has no model 'resnet5000'" in line and not (tmp_path / "r").exists()


def test_timm_not_installed_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(MissingExtraError, match="install prunex's 'timm' extra"):
        create_model("timm:resnet50d")
    line = _one_line(CliRunner().invoke(app, ["train", "--model", "timm:resnet50d", "--out", str(tmp_path / "r")]))
    assert "timm" in line and "extra" in line


def test_the_users_own_weights_load_and_weights_that_do_not_fit_are_one_line(tmp_path):
    torch.manual_seed(0)
    source = create_model("timm:test_resnet", num_classes=10, in_chans=1)
    save_file(source.state_dict(), tmp_path / "mine.safetensors")
    torch.save(create_model("timm:test_efficientnet", num_classes=10, in_chans=1).state_dict(), tmp_path / "other.pt")
    args = ["train", "--model", "timm:test_resnet", "--dataset", "digits", "--epochs", "1", "--quiet"]
    result = CliRunner().invoke(app, [*args, "--weights", str(tmp_path / "other.pt"), "--out", str(tmp_path / "r")])
    assert "--weights" in _one_line(result) and not (tmp_path / "r" / "checkpoint.pt").exists()
    from prunex.train.new_model import build_new_model

    loaded = build_new_model("timm:test_resnet", {"num_classes": 10, "in_chans": 1}, str(tmp_path / "mine.safetensors"))
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), source.state_dict().values(), strict=True)
    )


def test_timm_conv_variants_are_replaced_or_skipped_with_the_reason():
    """Conv2dSame pads from the input size and StdConv2d standardises its weight: skipped, saying so; the plain
    convs inside a MixedConv2d learn their grouping; the model is still exactly the same function."""
    x = torch.randn(1, 3, 64, 64)
    tf_model = create_model("timm:tf_efficientnet_b0", num_classes=10).eval()
    with torch.no_grad():
        before = tf_model(x)
    learned = learn_groups(tf_model, pointwise=True)
    why = dict(learned.skipped)
    assert why == {"conv_stem": f"Conv2dSame {OWN_FORWARD}"}
    with torch.no_grad():
        assert torch.equal(tf_model(x), before)
    mixnet = create_model("timm:mixnet_s", num_classes=10)
    learn_groups(mixnet, pointwise=True)  # its MixedConv2d pointwise convs are split in two
    mixed = [m for m in mixnet.modules() if type(m).__name__ == "MixedConv2d"]
    assert mixed and any(isinstance(c, DGConv2d) for m in mixed for c in m.children())


# The five networks, and the two with conv variants (1×1s too: RegNetX's 3×3s have 3-wide group counts)
COMPILED = [
    "resnet50d",
    "regnetx_016",
    "efficientnet_b0",
    "convnext_nano",
    "cspresnet50",
    "mixnet_s",
    "tf_efficientnet_b0",
]


@pytest.mark.slow  # seven timm networks through learn_groups, the whole compiler and ONNX Runtime (~1.5 min)
@pytest.mark.parametrize("name", COMPILED)
def test_timm_networks_compress_exactly_and_export_to_onnx(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(f"timm:{name}", num_classes=10)
    learn_groups(model, pointwise=True)
    _compresses_exactly_and_exports(randomise_batchnorm(random_dgconv_gates(model)).eval(), tmp_path)


def test_a_timm_network_is_a_reference_to_bench_against():
    from prunex.models.references import build_reference, choose_reference

    spec = {"name": "maskconnect_cifar", "kwargs": {"num_classes": 10, "in_chans": 1, "depth": 11}}
    reference = choose_reference("timm:test_resnet", spec)
    assert reference.kwargs == {"num_classes": 10, "in_chans": 1}  # the classes and channels, not the depth
    assert build_reference(reference)(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="timm has no model 'nope'"):
        choose_reference("timm:nope", spec)
