"""Runs of the real command in separate processes: a SIGKILL mid-run, and two-process DDP with gloo."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from prunex.train import load_checkpoint

TINY = [
    "--model",
    "maskconnect_cifar",
    "-a",
    "depth=11",
    "-a",
    "bottleneck_width=4",
    "-a",
    "cardinality=4",
    "-a",
    "fan_in=2",
    "--dataset",
    "synthetic",
    "--seed",
    "3",
    "--quiet",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _prunex(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "prunex", *args], env=ENV, capture_output=True, text=True, **kwargs)


def _metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # two six-epoch runs in subprocesses (~45 s); the in-process kill + resume test runs by default
def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = _prunex("train", *TINY, "--epochs", "6", "--out", str(whole), timeout=300)
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "prunex", "train", *TINY, "--epochs", "6", "--out", str(killed)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (killed / "metrics.jsonl").exists() and len(_metrics(killed)) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = load_checkpoint(killed)["train_state"]["epoch"]
    assert 1 <= survived < 6
    resumed = _prunex("train", "--resume", str(killed), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_checkpoint(whole)["state_dict"], load_checkpoint(killed)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda ms: [{k: v for k, v in m.items() if k != "seconds"} for m in ms]  # noqa: E731
    assert strip(_metrics(whole)) == strip(_metrics(killed))


def test_two_process_ddp_with_gloo(tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "prunex",
        "train",
        *TINY,
        "--epochs",
        "4",
        "--device",
        "cpu",
        "--out",
        str(run),
    ]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = load_checkpoint(run)
    assert ckpt["train_state"]["world_size"] == 2
    assert len(ckpt["train_state"]["rng"]) == 2  # every rank's RNG, for an exact resume
    metrics = _metrics(run)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]  # rank 0 alone writes
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    assert metrics[-1]["test_acc"] > 0.3  # well above chance (10 classes) after 16 synchronised steps


@pytest.mark.slow
def test_two_process_ddp_trains_fused_dgconv_gates(tmp_path):
    """GateFusion's hooks and its fused gate gradients under DistributedDataParallel (gloo)."""
    run = tmp_path / "ddp"
    model = ["--model", "g_resnext_cifar", "-a", "depth=11", "-a", "cardinality=4", "-a", "bottleneck_width=4"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "prunex"]
    cmd += ["train", *model, "--dataset", "synthetic", "--budget", "4", "--epochs", "2", "--device", "cpu"]
    done = subprocess.run([*cmd, "--quiet", "--out", str(run)], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = load_checkpoint(run)
    gates = [v for k, v in ckpt["state_dict"].items() if k.endswith(".gate")]
    assert gates and any(float(g.abs().max()) > 1e-6 for g in gates)  # initialised at ±1e-8: they learned
    metrics = _metrics(run)
    assert [m["epoch"] for m in metrics] == [1, 2] and "zeta" in metrics[-1]
