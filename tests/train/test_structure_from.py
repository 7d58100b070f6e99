"""DGConv's Table 6: the plain grouped network with the group counts a DGConv run learned, retrained from scratch."""

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.models import create_model
from prunex.models.from_checkpoint import model_from_checkpoint
from prunex.models.structure import apply_structure, learned_groups
from prunex.nn.dgconv import DGConv2d
from prunex.passes import compress
from tests.passes.helpers import random_dgconv_gates

TINY = ["--model", "g_resnext_cifar", "-a", "depth=11", "-a", "cardinality=4", "-a", "bottleneck_width=4"]


def _learned(seed=1):
    return random_dgconv_gates(create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=4), seed)


def test_each_dgconv_becomes_a_plain_conv_with_its_learned_group_count():
    source = _learned()
    groups = learned_groups(source)
    assert len(set(groups.values())) > 1  # the random gates give different G per layer
    plain = apply_structure(create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=4), groups)
    layers = dict(plain.named_modules())
    assert not any(isinstance(m, DGConv2d) for m in plain.modules())
    for name, g in groups.items():
        conv = layers[name]
        assert type(conv) is nn.Conv2d and conv.groups == g
        assert conv.weight.numel() == source.get_submodule(name).weight.numel() // g  # what compression keeps
    assert plain.prunex_spec.structure == {"groups": groups}
    assert plain(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_the_retrained_convs_start_from_he_initialisation_like_every_paper_network():
    """N(0, 2 / (k² · C_out)) weights and zero biases, not PyTorch's default (a uniform of std 1 / √(3 · fan_in),
    20 % smaller for these convs)."""
    torch.manual_seed(0)
    model = create_model("g_resnext_cifar", depth=11, cardinality=8, bottleneck_width=32)
    name = next(n for n, m in model.named_modules() if isinstance(m, DGConv2d))
    conv = apply_structure(model, {name: 4}).get_submodule(name)
    he_std = (2 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels)) ** 0.5
    assert conv.weight.numel() > 100_000
    assert abs(float(conv.weight.std()) / he_std - 1) < 0.01 and abs(float(conv.weight.mean())) < 0.01 * he_std


def test_a_new_run_from_a_checkpoint_builds_the_plain_network_of_its_learned_groups(tmp_path):
    from prunex.artifacts.checkpoint import save_checkpoint
    from prunex.train import Trainer, build_config

    source = _learned()
    info = {"name": "synthetic", "num_classes": 10, "in_chans": 3, "image_size": 16}
    config = {"model": "g_resnext_cifar", "model_kwargs": source.prunex_spec.kwargs, "dataset": "synthetic"}
    spec = source.prunex_spec.to_dict()
    save_checkpoint(
        tmp_path / "src" / "checkpoint.pt",
        {"spec": spec, "state_dict": source.state_dict(), "dataset": info, "config": config},
    )
    cfg = build_config({"structure_from": str(tmp_path / "src"), "out": str(tmp_path / "plain"), "epochs": 2})
    assert (cfg.model, cfg.dataset, cfg.budget) == ("g_resnext_cifar", "synthetic", None)
    trainer = Trainer(cfg)
    try:
        convs = {n: m.groups for n, m in trainer.model.named_modules() if type(m) is nn.Conv2d}
        assert {n: convs[n] for n in learned_groups(source)} == learned_groups(source)
        assert trainer.schedule.budget_o is None and not any(isinstance(m, DGConv2d) for m in trainer.model.modules())
    finally:
        trainer.close()


@pytest.mark.slow  # two short training runs through the CLI (~20 s)
def test_structure_from_a_run_trains_the_plain_network_and_its_checkpoint_rebuilds_it(tmp_path):
    source, plain = tmp_path / "src", tmp_path / "plain"
    runner = CliRunner()
    result = runner.invoke(app, ["train", *TINY, "--dataset", "synthetic", "--epochs", "2", "-q", "-o", str(source)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--structure-from", str(source), "--epochs", "2", "-q", "-o", str(plain)])
    assert result.exit_code == 0, result.output
    learned, _ = model_from_checkpoint(source)
    model, ckpt = model_from_checkpoint(plain)
    assert ckpt["config"]["dataset"] == "synthetic" and ckpt["config"]["budget"] is None  # the run's data, no gates
    assert ckpt["spec"]["structure"]["groups"] == learned_groups(learned)
    convs = {n: m.groups for n, m in model.named_modules() if type(m) is nn.Conv2d and n in learned_groups(learned)}
    assert convs == learned_groups(learned)
    gm, report = compress(model, torch.randn(2, 3, 16, 16))  # a plain network: nothing learned to compile away
    assert report.groups == []


def test_structure_from_refuses_what_it_cannot_use(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["train", "--structure-from", str(tmp_path / "nothing")], env={"COLUMNS": "200"})
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    both = runner.invoke(app, ["train", "--structure-from", str(tmp_path), "--budget", "4"], env={"COLUMNS": "200"})
    assert both.exit_code == 2 and "--budget cannot be given with it" in both.output
