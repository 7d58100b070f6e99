"""Loops that follow a StructureSchedule — a plain PyTorch loop, a Lightning run, an Accelerate loop — train what
``prunex train`` trains from the same seed, batches and recipe (two epochs of digits: masks or gates learn, then
MaskConnect's connectivity is frozen and the optimiser renewed), and the result compresses exactly."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from prunex.artifacts.checkpoint import load_checkpoint
from prunex.data import load_dataset
from prunex.models import create_model
from prunex.passes import compress
from prunex.train import Phase, StructureSchedule, TrainConfig, train
from tests.train.helpers import TINY_MASKCONNECT

PHASES = (
    Phase("learn", 1, 0.05, gate_lr=0.2, schedule="cosine"),
    Phase("fine-tune", 1, 0.05, freeze_connectivity=True),
)
CASES = [("maskconnect_cifar", TINY_MASKCONNECT, None), ("g_resnext_cifar", {"depth": 11, "cardinality": 4}, 4.0)]
# MaskConnect by default, G-ResNeXt (the resource term) with -m slow
FRAMEWORK_CASES = [
    pytest.param(*CASES[0], id="maskconnect_cifar"),
    pytest.param(*CASES[1], id="g_resnext_cifar", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def prunex_train(tmp_path_factory):
    """``prunex train`` of a case, run once per case for the whole module: (config, checkpoint state dict)."""
    runs = {}

    def run(name: str, kwargs: dict, budget: float | None) -> tuple[TrainConfig, dict]:
        if name not in runs:
            runs[name] = _prunex_train(tmp_path_factory.mktemp(name), name, kwargs, budget)
        return runs[name]

    return run


def _prunex_train(tmp_path, name, kwargs, budget) -> tuple[TrainConfig, dict]:
    config = TrainConfig(
        model=name,
        model_kwargs=dict(kwargs),
        phases=PHASES,
        budget=budget,
        alpha=-0.5,
        dataset="digits",
        augment=False,
        seed=5,
        out=str(tmp_path / "run"),
    )
    train(config)
    return config, load_checkpoint(tmp_path / "run")["state_dict"]


def _start(config: TrainConfig):
    """What every user loop starts with: the seed, the digits, the model, a shuffled loader."""
    torch.manual_seed(config.seed)
    data = load_dataset("digits", augment=False)
    model = create_model(config.model, num_classes=10, in_chans=1, **config.model_kwargs)
    sampler = DistributedSampler(data.train, num_replicas=1, rank=0, seed=config.seed)
    loader = DataLoader(data.train, config.batch_size, sampler=sampler, drop_last=True, generator=torch.Generator())
    return model, loader, sampler


def _assert_same_and_compresses(model: nn.Module, expected: dict) -> None:
    got = model.state_dict()
    assert list(got) == list(expected)
    for key, value in got.items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6, msg=key)
    x = torch.randn(2, 1, 8, 8)
    compressed, _ = compress(model, x)
    with torch.no_grad():
        torch.testing.assert_close(compressed(x), model.eval()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("name", "kwargs", "budget"), FRAMEWORK_CASES)
def test_a_plain_loop_reproduces_prunex_train(prunex_train, name, kwargs, budget):
    config, expected = prunex_train(name, kwargs, budget)
    model, loader, sampler = _start(config)
    schedule = StructureSchedule(model, config)
    optimizer = schedule.optimizer()
    for epoch in range(schedule.epochs):
        schedule.start_epoch(epoch, optimizer)
        sampler.set_epoch(epoch)
        model.train()
        for step, (x, y) in enumerate(loader):
            schedule.set_lr(optimizer, epoch, step, len(loader))
            loss = schedule.objective(nn.functional.cross_entropy(model(x), y), epoch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    _assert_same_and_compresses(model, expected)


@pytest.mark.parametrize(("name", "kwargs", "budget"), FRAMEWORK_CASES)
def test_a_lightning_run_with_the_structure_callback_reproduces_prunex_train(
    tmp_path, prunex_train, name, kwargs, budget
):
    pl = pytest.importorskip("pytorch_lightning", reason="the lightning extra is not installed")
    from prunex.integrations.lightning import StructureCallback

    config, expected = prunex_train(name, kwargs, budget)
    model, loader, sampler = _start(config)

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model
            self.structure = StructureCallback(StructureSchedule(model, config))

        def on_train_epoch_start(self):
            sampler.set_epoch(self.current_epoch)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.structure.objective(nn.functional.cross_entropy(self.model(x), y))

        def configure_optimizers(self):
            return self.structure.schedule.optimizer()

    net = Net()
    trainer = pl.Trainer(
        max_epochs=net.structure.schedule.epochs,
        callbacks=[net.structure],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(net, loader)
    _assert_same_and_compresses(model, expected)


@pytest.mark.slow  # the Lightning run checks a framework loop by default; Accelerate's import alone takes seconds
@pytest.mark.parametrize(("name", "kwargs", "budget"), CASES, ids=[c[0] for c in CASES])
def test_an_accelerate_loop_with_the_structure_hooks_reproduces_prunex_train(prunex_train, name, kwargs, budget):
    accelerate = pytest.importorskip("accelerate", reason="the accelerate extra is not installed")
    from prunex.integrations.accelerate import AcceleratedStructure

    config, expected = prunex_train(name, kwargs, budget)
    model, loader, _ = _start(config)
    structure = AcceleratedStructure(StructureSchedule(model, config), accelerate.Accelerator(cpu=True))
    net, optimizer, loader = structure.prepare(loader)
    for _ in structure.epochs(loader):
        net.train()
        for step, (x, y) in enumerate(loader):
            structure.set_lr(step, len(loader))
            loss = structure.objective(nn.functional.cross_entropy(net(x), y))
            structure.accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
    _assert_same_and_compresses(structure.accelerator.unwrap_model(net), expected)
