"""Never lose a user's work, and answer every bad input with one clear line.

Each case asserts the exit status (2 bad input, 3 failed verification, 130 interrupted), one ``error:`` line and
no traceback, and that the files that were there before are byte for byte as they were.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import prunex.passes.pipeline as pipeline_module
from prunex.artifacts import RunLock, atomic_directory
from prunex.cli.app import app
from prunex.train import Trainer, load_checkpoint, save_checkpoint
from tests.passes.helpers import bias_breaker
from tests.train.helpers import tiny_config, trained_and_compressed_run

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file under ``root`` (outside ``skip``) with the hash of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and (skip is None or skip not in path.parents):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_one_line_error(result, code: int = 2, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    flat = " ".join(result.output.split())
    prefix = {2: "error:", 3: "not equivalent:", 130: "interrupted"}[code]
    assert flat.count(prefix) == 1, result.output
    for word in words:
        assert word in flat, (word, result.output)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_and_compressed_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture
def work(run, tmp_path):
    """A private copy of the trained and compressed run."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


# -- compress: earlier results are never lost ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--tune", "bogus"], ["--tune", "bogus"]),
        (["--target-dtype", "fp64"], ["fp64"]),
        (["--calibration", "0"], ["--calibration"]),
        (["--tolerance", "-1"], ["--tolerance"]),
        (["--target-batch", "0"], ["--target-batch"]),
    ],
)
def test_compress_force_with_a_bad_option_keeps_the_compressed_model(work, options, words):
    before = snapshot(work)
    result = invoke("compress", work, "--force", *options)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert all(w in " ".join(result.output.split()) for w in words), result.output
    assert snapshot(work) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_compress_for_a_missing_cuda_device_keeps_everything(work):
    before = snapshot(work)
    assert_one_line_error(invoke("compress", work, "--force", "--tune", "cache", "--target-device", "cuda"), 2, "CUDA")
    assert snapshot(work) == before


def test_a_failed_verification_keeps_the_earlier_compressed_model(work, monkeypatch):
    original = pipeline_module.default_passes
    monkeypatch.setattr(
        pipeline_module, "default_passes", lambda options, *rest: [*original(options, *rest), bias_breaker("head.fc")]
    )
    before = snapshot(work)
    result = invoke("compress", work, "--force")
    assert_one_line_error(result, 3, "'broken'", "compressed.failure.json", "unchanged")
    assert snapshot(work, skip=None) == {**before, "compressed.failure.json": snapshot(work)["compressed.failure.json"]}
    assert json.loads((work / "compressed.failure.json").read_text())["failed_pass"] == "broken"


def test_ctrl_c_in_compress_says_nothing_was_written(work, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("prunex.workflows.compress.compile_model", interrupt)
    before = snapshot(work)
    result = invoke("compress", work, "--force")
    assert_one_line_error(result, 130, "nothing was written")
    assert "RUN_DIR" not in result.output and "--resume" not in result.output
    assert snapshot(work) == before


def test_compress_never_replaces_files_it_did_not_write(work, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert_one_line_error(invoke("compress", work, "--out", mine, "--force"), 2, "notes.txt")
    assert (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_output_directory_fails_before_any_work(work, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert_one_line_error(invoke("compress", work, "--out", locked / "c"), 2, "not writable")
        assert_one_line_error(invoke("bench", work, "--out", locked / "b", "--backend", "eager"), 2, "not writable")
    finally:
        locked.chmod(0o755)


def test_atomic_directory_leaves_the_old_one_on_failure(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target, replace=True) as tmp:
        (tmp / "a").write_text("new")
        raise RuntimeError("half way")
    assert (target / "a").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_directory(target, replace=True) as tmp:
        (tmp / "a").write_text("new")
    assert (target / "a").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out"]


# -- train: runs are never overwritten ------------------------------------------------------------------------------
def test_resuming_an_older_checkpoint_refuses_to_overwrite_the_newer_run(tmp_path):
    run = tmp_path / "r"
    Trainer(tiny_config(run, phases=tiny_config(run).phases[:1])).fit()  # 2 epochs
    ckpt = load_checkpoint(run)
    older = dict(ckpt, train_state={**ckpt["train_state"], "epoch": 1, "phase": 0, "epoch_in_phase": 0})
    older["history"] = ckpt["history"][:1]
    save_checkpoint(run / "older.pt", {k: v for k, v in older.items() if k not in ("format", "version")})
    before = snapshot(run)
    result = invoke("train", "--resume", run / "older.pt")
    assert_one_line_error(result, 2, "newer work", "--out NEW_DIR")
    assert snapshot(run) == before
    new = tmp_path / "continued"
    result = invoke("train", "--resume", run / "older.pt", "--out", new, "--quiet")
    assert result.exit_code == 0, result.output
    assert snapshot(run) == before
    assert len((new / "metrics.jsonl").read_text().splitlines()) == 2
    assert load_checkpoint(new)["train_state"]["epoch"] == 2


def test_options_given_with_resume_are_refused_by_name(tmp_path):
    run = tmp_path / "r"
    Trainer(tiny_config(run, phases=tiny_config(run).phases[:1])).fit()
    before = snapshot(run)
    assert_one_line_error(invoke("train", "--resume", run, "--epochs", "50", "--batch-size", "7"), 2, "--epochs")
    assert "--batch-size" in " ".join(invoke("train", "--resume", run, "--batch-size", "7").output.split())
    assert snapshot(run) == before


def test_a_directory_holding_part_of_a_run_is_not_overwritten(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    assert_one_line_error(invoke("train", "--out", out, "--dataset", "synthetic"), 2, "config.json")
    assert (out / "config.json").read_text() == '{"mine": true}'


def test_a_second_writer_of_a_run_directory_is_refused(tmp_path):
    out = tmp_path / "r"
    with RunLock(out):
        result = invoke("train", "--out", out, "--dataset", "synthetic")
    assert_one_line_error(result, 2, "being written by prunex process", str(os.getpid()))
    assert not (out / "config.json").exists()


def test_ctrl_c_in_the_first_epoch_promises_no_checkpoint(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("prunex.train.step.TrainStep.__call__", interrupt)
    result = invoke("train", "--out", tmp_path / "r", "--dataset", "synthetic")
    assert_one_line_error(result, 130, "nothing to resume")
    assert "RUN_DIR" not in result.output
    with RunLock(tmp_path / "r"):  # released: a later run may take the directory
        pass


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--weight-decay", "-1"], ["--weight-decay"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--batch-size", "-5"], ["--batch-size"]),
        (["--workers", "-2"], ["--workers"]),
        (["--epochs", "0"], ["--epochs"]),
        (["--model", "maskconnect_cifar", "--model-arg", "depth=7"], ["depth"]),
        (["--model", "maskconnect_cifar", "--model-arg", "nosuchkw=1"], ["nosuchkw", "it takes"]),
        (["--model", "maskconnect_cifar", "--model-arg", "depth=abc"], ["depth must be a whole number, got 'abc'"]),
        (["--branch-parallel", "2"], ["--branch-parallel 2", "no multi-residual blocks"]),  # said before the world
        (["--ten-crop"], ["ten-crop testing crops image folders", "synthetic"]),
        (["--model", "multiresnet_cifar", "-a", "depth=8", "-a", "k=3", "--branch-parallel", "2"], ["k = 3"]),
    ],
)
def test_bad_training_options_are_one_line(tmp_path, options, words):
    result = invoke("train", "--out", tmp_path / "r", "--dataset", "synthetic", *options)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert all(w in " ".join(result.output.split()) for w in words), result.output
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_messages_say_what_was_wrong_in_prunex_s_words(tmp_path, run):
    (tmp_path / "phase.toml").write_text('[[phases]]\nname = "a"\nepochs = 2\n')
    result = invoke("train", "--config", tmp_path / "phase.toml", "--out", tmp_path / "r")
    assert_one_line_error(result, 2, "phase 'a': needs lr")
    result = invoke("train", "--out", tmp_path / "r", "--dataset", "synthetic", "-a", "bogus=1")
    assert " ".join(result.output.split()).count("it takes") == 1, result.output
    (tmp_path / "cut.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:300])
    (tmp_path / "noise.pt").write_bytes(os.urandom(3000))
    for name in ("cut.pt", "noise.pt"):
        result = invoke("train", "--resume", tmp_path / name)
        assert_one_line_error(result, 2, name, "checkpoint")
        assert "weights_only" not in result.output and "torch.load" not in result.output, result.output


def test_bad_config_files_are_one_line(tmp_path):
    for name, content in [("c.json", b"[1, 2]"), ("c.json", b"\xff\xfe"), ("c.toml", b"batch_size = 'many'")]:
        path = tmp_path / name
        path.write_bytes(content)
        assert_one_line_error(invoke("train", "--config", path, "--out", tmp_path / "r"), 2)


def test_corrupt_images_in_a_folder_are_named(tmp_path):
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 40), (60 * i, 0, 0)).save(tmp_path / "data" / split / c / f"{i}.png")
    (tmp_path / "data" / "train" / "a" / "0.png").write_bytes(b"not an image at all")
    result = invoke(
        "train",
        "--dataset",
        "imagefolder",
        "--data-root",
        tmp_path / "data",
        "--out",
        tmp_path / "r",
        "--epochs",
        "4",
        "--batch-size",
        "2",
    )
    assert_one_line_error(result, 2, "cannot read", "0.png")


@pytest.mark.parametrize(
    "state",
    [
        {"spec": "g_resnext50"},
        {"spec": {"name": 7}},
        {"state_dict": [1, 2]},
        {"state_dict": {"w": "not a tensor"}},
        {"dataset": "digits"},
        {"train_state": None},
    ],
)
def test_malformed_checkpoints_are_one_line(run, tmp_path, state):
    ckpt = load_checkpoint(run)
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, {**{k: v for k, v in ckpt.items() if k not in ("format", "version")}, **state})
    for command in (["train", "--resume", bad], ["compress", bad, "--out", tmp_path / "c"], ["inspect", bad]):
        result = invoke(*command)
        if "train_state" in state and command[0] != "train":
            assert result.exit_code == 0, result.output  # only resuming needs the training state
        else:
            assert_one_line_error(result, 2)


# -- export / bench / inspect ----------------------------------------------------------------------------------------
def test_an_opset_the_exporter_cannot_write_is_refused_before_export(work, tmp_path):
    out = tmp_path / "m.onnx"
    assert_one_line_error(invoke("export", work / "compressed", "--onnx", out, "--opset", "99"), 2, "--opset 99")
    assert_one_line_error(invoke("export", work / "compressed", "--onnx", out, "--exporter", "x"), 2, "--exporter")
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--batch", "0"], ["--batch"]),
        (["--batch", ""], ["--batch"]),
        (["--batch", "-4"], ["--batch"]),
        (["--batch", "a,b"], ["--batch"]),
        (["--warmup", "-3"], ["--warmup"]),
        (["--iters", "0"], ["--iters"]),
        (["--iters", "-5"], ["--iters"]),
    ],
)
def test_bad_bench_options_measure_nothing_and_say_so(work, tmp_path, options, words):
    result = invoke("bench", work / "compressed", "--out", tmp_path / "b", "--backend", "eager", *options)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert all(w in " ".join(result.output.split()) for w in words), result.output
    assert not (tmp_path / "b").exists()


def _damage(compressed: Path, kind: str) -> None:
    weights, spec = compressed / "model.safetensors", compressed / "model.json"
    if kind == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif kind == "random weights":
        weights.write_bytes(os.urandom(2048))
    elif kind == "invalid json":
        spec.write_text("{not json")
    elif kind == "no modules":
        data = json.loads(spec.read_text())
        del data["modules"]
        spec.write_text(json.dumps(data))
    elif kind == "wrong shapes":
        data = json.loads(spec.read_text())
        first = next(iter(data["modules"].values()))
        first["args"]["out_channels"] = first["args"].get("out_channels", 1) + 1
        spec.write_text(json.dumps(data))


@pytest.mark.parametrize("kind", ["truncated weights", "random weights", "invalid json", "no modules", "wrong shapes"])
def test_a_damaged_compressed_model_is_one_line_for_export_and_bench(work, tmp_path, kind):
    _damage(work / "compressed", kind)
    assert_one_line_error(invoke("export", work / "compressed", "--onnx", tmp_path / "m.onnx"), 2, "compressed")
    result = invoke("bench", work / "compressed", "--out", tmp_path / "b", "--backend", "eager", "--iters", "1")
    assert_one_line_error(result, 2)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "b").exists()


def test_inspect_numbers_its_default_output_and_replaces_a_given_one_only_with_force(work, tmp_path):
    assert invoke("inspect", work, "--no-plots").exit_code == 0
    first = snapshot(work / "inspect")
    assert invoke("inspect", work, "--no-plots").exit_code == 0  # a default output never replaces an earlier one
    assert snapshot(work / "inspect") == first and (work / "inspect-2" / "summary.json").is_file()
    assert_one_line_error(invoke("inspect", work, "--no-plots", "--out", work / "inspect"), 2, "--force")
    assert snapshot(work / "inspect") == first
    assert invoke("inspect", work, "--no-plots", "--out", work / "inspect", "--force").exit_code == 0
    (work / "inspect" / "mine.txt").write_text("keep")
    assert_one_line_error(invoke("inspect", work, "--no-plots", "--out", work / "inspect", "--force"), 2, "mine.txt")
    assert (work / "inspect" / "mine.txt").read_text() == "keep"
    assert_one_line_error(invoke("inspect", work, "--format", "gif", "--out", tmp_path / "i"), 2, "--format")


# -- every command, random options and random files ---------------------------------------------------------------
COMMANDS = ["compress", "export", "bench", "inspect", "train-resume", "train-config"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    command=st.sampled_from(COMMANDS),
    data=st.binary(max_size=512),
    number=st.one_of(st.integers(-5, 5), st.sampled_from(["", "x", "1.5", "-0", "1e9"])),
    word=st.text(alphabet="abcdefxyz-_,.0123456789", max_size=8),
)
def test_random_options_and_files_never_end_in_a_traceback(tmp_path_factory, command, data, number, word):
    root = tmp_path_factory.mktemp("fuzz")
    src = root / ("input.json" if command == "train-config" else "input.pt")
    src.write_bytes(data)
    out = root / "out"
    args = {
        "compress": ["compress", src, "--out", out, "--calibration", number, "--tune", word],
        "export": ["export", src, "--onnx", out / "m.onnx", "--opset", number, "--exporter", word],
        "bench": ["bench", src, "--out", out, "--batch", f"{number},{word}", "--iters", number, "--backend", "eager"],
        "inspect": ["inspect", src, "--out", out, "--format", word],
        "train-resume": ["train", "--resume", src, "--workers", number],
        "train-config": ["train", "--config", src, "--out", out, "--epochs", number, "--dataset", "synthetic"],
    }[command]
    before = snapshot(root, skip=out)
    result = invoke(*args)
    assert result.exit_code in (0, 2, 3), (args, result.output, result.exception)
    assert "Traceback" not in result.output
    assert snapshot(root, skip=out) == before


def test_a_batch_that_does_not_fit_in_memory_is_reported_per_row(work, tmp_path, monkeypatch):
    import prunex.runtime.backends as run_module  # where the eager backend is prepared

    real_prepare = run_module.prepare_eager

    def out_of_memory_above_batch_1(case):
        if case.batch > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_prepare(case)

    monkeypatch.setattr(run_module, "prepare_eager", out_of_memory_above_batch_1)
    result = invoke("bench", work / "compressed", "--out", tmp_path / "b", "--backend", "eager", "--iters", "3")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "b" / "bench.json").read_text())["results"]
    assert {r["status"] for r in rows if r["batch"] == 1} == {"ok"}
    big = [r for r in rows if r["batch"] == 32]
    assert big and all(r["status"] == "unavailable" and "out of memory at batch 32" in r["reason"] for r in big)
    assert "not measured: out of memory" in " ".join(result.output.split())
