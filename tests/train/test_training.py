import json
from pathlib import Path

import pytest
import torch

from prunex.nn.branch_gates import BranchGates, topk_mask
from prunex.train import TrainConfig, Trainer, build_config, load_checkpoint, train
from tests.train.helpers import KillAfter, SimulatedKill, tiny_config


@pytest.mark.slow  # a four-phase run (~6 s); masks moving in phase 1 is checked by default just below
def test_masks_move_during_phase_one_and_keep_k_positive_entries(tmp_path):
    trainer = Trainer(tiny_config(tmp_path / "run"))
    gates = [m for m in trainer.model.modules() if isinstance(m, BranchGates)]
    initial = [topk_mask(m.weight, 2, m.priority) for m in gates]
    result = trainer.fit()
    phase1 = [m for m in result.history if m["phase"] == "learn-connectivity"]
    assert all(m["mask_min_positive"] >= 2 for m in phase1)  # K = 2
    ckpt = load_checkpoint(tmp_path / "run")
    # phase 1's masks are frozen at top-K in phase 2; the real masks of the last phase-1 epoch are in metrics only,
    # so compare the frozen masks with top-K of the initial ones: learning changed which connections win.
    frozen = [v for k, v in ckpt["state_dict"].items() if k.endswith("gates.mask")]
    assert len(frozen) == len(initial)
    changed = sum(int((f != i).any()) for f, i in zip(frozen, initial, strict=True))
    assert changed >= 1
    assert all(torch.all(f.sum(1) == 2) for f in frozen)


def test_masks_move_measurably_while_learning(tmp_path):
    cfg = tiny_config(tmp_path / "run", phases=tiny_config(tmp_path).phases[:1])
    trainer = Trainer(cfg)
    gates = [m for m in trainer.model.modules() if isinstance(m, BranchGates)]
    initial = [g.weight.detach().clone() for g in gates]
    trainer.fit()
    moved = max(float((g.weight.detach() - i).abs().max()) for g, i in zip(gates, initial, strict=True))
    assert moved > 0.05  # the initial spread is 0.01
    assert all(bool(((g.weight > 0).sum(1) >= g.fan_in).all()) for g in gates)
    assert all(float(g.weight.detach().min()) >= 0 and float(g.weight.detach().max()) <= 1 for g in gates)


def _final(run_dir):
    ckpt = load_checkpoint(run_dir)
    return ckpt["state_dict"], [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(a, b):
    sd_a, metrics_a = a
    sd_b, metrics_b = b
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), k
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in metrics_a]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in metrics_b]


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path):
    train(tiny_config(tmp_path / "whole"))
    steps_per_epoch = 512 // 64
    with pytest.raises(SimulatedKill):  # dies in the middle of epoch 3 (the first epoch of phase 2)
        train(tiny_config(tmp_path / "killed"), observer=KillAfter(2 * steps_per_epoch + 3))
    assert load_checkpoint(tmp_path / "killed")["train_state"]["epoch"] == 2
    train(TrainConfig(), resume=tmp_path / "killed")  # everything else comes from the checkpoint
    _assert_same_run(_final(tmp_path / "whole"), _final(tmp_path / "killed"))


@pytest.mark.slow  # two 8-epoch runs (~30 s); tests/train/test_step.py checks the constraint's gradient quickly
def test_dgconv_budget_is_met_and_a_looser_one_keeps_more_connections(tmp_path):
    zetas = {}
    for b in (16.0, 2.0):
        cfg = build_config(
            {
                "model": "g_resnext_cifar",
                "model_kwargs": dict(depth=11, cardinality=4, bottleneck_width=4),
                "dataset": "synthetic",
                "budget": b,
                "epochs": 8,
                "out": str(tmp_path / f"b{b}"),
            }
        )
        last = train(cfg).metrics
        assert last["zeta"] <= last["budget_o"], (b, last)
        zetas[b] = last["zeta"]
    assert zetas[2.0] > zetas[16.0]


def test_an_existing_run_directory_is_not_overwritten(tmp_path):
    train(tiny_config(tmp_path / "run", phases=tiny_config(tmp_path).phases[:1]))
    from prunex.train import ConfigError

    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(tiny_config(tmp_path / "run"))


def test_a_new_run_takes_the_first_free_numbered_directory(tmp_path, monkeypatch):
    from prunex.train.run_dir import next_run_dir

    monkeypatch.chdir(tmp_path)
    config = TrainConfig(model="torchvision:resnet18", dataset="synthetic")
    assert next_run_dir(config) == Path("runs/torchvision-resnet18-synthetic")
    for taken in ("runs/torchvision-resnet18-synthetic", "runs/torchvision-resnet18-synthetic-2"):
        (tmp_path / taken).mkdir(parents=True)
    assert next_run_dir(config) == Path("runs/torchvision-resnet18-synthetic-3")
    assert next_run_dir(TrainConfig(dataset="synthetic", out="mine")) == Path("mine")  # --out is taken as given


@pytest.mark.slow
def test_compiled_training_writes_the_same_kind_of_run_and_resumes(tmp_path):
    """prunex train --compile: checkpoints, metrics and resume as without it (torch.compile on the CPU)."""
    run = tmp_path / "run"
    cfg = tiny_config(run, model="g_resnext_cifar", model_kwargs={"depth": 11, "cardinality": 4, "bottleneck_width": 4})
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "compile": True, "budget": 4.0})
    with pytest.raises(SimulatedKill):
        Trainer(cfg, observer=KillAfter(20)).fit()  # in the third epoch (8 steps each)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    result = Trainer(TrainConfig(compile=True), resume=run).fit()
    assert [m["epoch"] for m in result.history] == [1, 2, 3, 4]
    assert load_checkpoint(run)["config"]["compile"] is True
    assert result.metrics["test_acc"] > 0.5
