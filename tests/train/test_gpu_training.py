"""Training on a CUDA device: fp16 autocast with its gradient scaler survives a kill and a resume."""

import pytest
import torch

from prunex.artifacts.checkpoint import load_checkpoint
from prunex.train import TrainConfig, train
from tests.train.helpers import KillAfter, SimulatedKill, tiny_config

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture
def fp16_autocast(monkeypatch):
    """fp16 autocast (the case with a GradScaler) even on GPUs that support bf16."""
    import prunex.train.epochs as epochs
    import prunex.train.step as step

    for module in (step, epochs):
        monkeypatch.setattr(module, "autocast_dtype", lambda device: torch.float16)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False


def test_a_resumed_fp16_run_restores_its_gradient_scaler(tmp_path, fp16_autocast):
    cfg = dict(device="cuda", amp=True)
    whole = train(tiny_config(tmp_path / "whole", **cfg))
    steps_per_epoch = 512 // 64
    with pytest.raises(SimulatedKill):  # in epoch 4: the checkpoint is in the middle of phase 2
        train(tiny_config(tmp_path / "killed", **cfg), observer=KillAfter(3 * steps_per_epoch + 3))
    saved = load_checkpoint(tmp_path / "killed")["train_state"]["scaler"]
    assert saved is not None and saved["scale"] > 0
    resumed = train(TrainConfig(device="cuda"), resume=tmp_path / "killed")
    a = load_checkpoint(whole.run_dir)["train_state"]["scaler"]
    b = load_checkpoint(resumed.run_dir)["train_state"]["scaler"]
    # the scaler counts the phase's steps since it last grew: restored, it counts all 16; fresh, only the last 8
    assert a["_growth_tracker"] == b["_growth_tracker"] and a["scale"] == b["scale"]
    assert resumed.metrics["test_acc"] == pytest.approx(whole.metrics["test_acc"], abs=0.02)
