"""No command replaces, renames or damages a file it did not write, and every mistake exits 2 with one line on
standard error and every file as it was (checksums of the whole tree before and after)."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from prunex.artifacts import RunLock
from prunex.artifacts.tuning_cache import TuningCache, TuningCacheError
from prunex.cli.app import app
from tests.cli.test_user_errors import snapshot
from tests.train.helpers import trained_and_compressed_run

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def assert_refused(result, *words: str) -> None:
    """Exit 2, exactly one line on standard error starting ``error:`` and naming ``words``, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "error:" not in result.stdout, result.stdout
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return trained_and_compressed_run(tmp_path_factory.mktemp("safety") / "run")


@pytest.fixture
def world(pristine, tmp_path):
    """A run (trained, compressed) beside a user's own files: notes, a project directory, an empty directory."""
    shutil.copytree(pristine, tmp_path / "run")
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "myproject").mkdir()
    (tmp_path / "myproject" / "main.py").write_text("print('hello')\n")
    (tmp_path / "empty").mkdir()
    return tmp_path


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- export: never over a file it did not write ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "target", "words"),
    [
        ("run/compressed", "run/checkpoint.pt", ["run/checkpoint.pt", "never replaced"]),
        ("run/compressed", "run/compressed/model.safetensors", ["one of the export's inputs"]),
        ("run", "run/checkpoint.pt", ["one of the export's inputs"]),
        ("run/compressed", "notes.txt", ["notes.txt", "not an earlier prunex export"]),
        ("run/compressed", "myproject", ["is a directory"]),
    ],
)
def test_export_never_replaces_a_file_it_did_not_write(world, source, target, words):
    before = snapshot(world)
    assert_refused(invoke("export", world / source, "--onnx", world / target), *words)
    assert_refused(invoke("export", world / source, "--onnx", world / target, "--force"), *words)
    assert snapshot(world) == before and listing(world) == listing(world)


def test_export_refuses_a_report_path_that_holds_a_users_file(world):
    (world / "m.validation.json").write_text('{"mine": true}')
    before = snapshot(world)
    assert_refused(invoke("export", world / "run/compressed", "--onnx", world / "m.onnx", "--force"), "m.validation")
    assert snapshot(world) == before and not (world / "m.onnx").exists()


def test_export_replaces_its_own_earlier_model_only_with_force_and_not_once_edited(world):
    from prunex.artifacts.export_outputs import sha256_of

    out = world / "m.onnx"
    assert invoke("export", world / "run/compressed", "--onnx", out).exit_code == 0
    assert json.loads((world / "m.validation.json").read_text())["sha256"] == sha256_of(out)
    before = snapshot(world)
    assert_refused(invoke("export", world / "run/compressed", "--onnx", out), "--force")
    assert snapshot(world) == before
    assert invoke("export", world / "run/compressed", "--onnx", out, "--force").exit_code == 0
    assert json.loads((world / "m.validation.json").read_text())["sha256"] == sha256_of(out)
    out.write_bytes(out.read_bytes() + b"user edit")  # now the user's file, whatever its report says
    before = snapshot(world)
    assert_refused(invoke("export", world / "run/compressed", "--onnx", out, "--force"), "not an earlier prunex export")
    assert snapshot(world) == before


def test_two_outputs_that_would_write_the_same_file_are_refused(world):
    before = snapshot(world)
    result = invoke("export", world / "run/compressed", "--onnx", world / "m.onnx", "--trt", world / "m.plan")
    assert_refused(result, "--onnx and --trt would both write", "m.validation.json")
    assert snapshot(world) == before and listing(world) == listing(world)


# -- the tuning cache: refused unless it is prunex's own ---------------------------------------------------------------
@pytest.mark.parametrize("target", ["myproject", "empty", "notes.txt", "run/checkpoint.pt"])
def test_a_tuning_cache_path_that_is_not_one_is_refused_and_never_moved(world, target):
    names, before = listing(world), snapshot(world)
    result = invoke("compress", world / "run", "--force", "--tune", "cache", "--tuning-cache", world / target)
    assert_refused(result, "--tuning-cache", "not a prunex tuning cache")
    assert listing(world) == names and snapshot(world) == before
    with pytest.raises(TuningCacheError):
        TuningCache(world / target)
    assert listing(world) == names


@pytest.mark.parametrize(
    "content",
    [
        b'{"format": "prunex.tuning-cache", "version": 2,\n "entries": {"a || b || c": {"dense": 1.',  # truncated
        b'{"format": "prunex.tuning-cache", "version": 2, "entries": {"a || b || c": {"dense": -1.0}}}',
        b'{"format": "prunex.tuning-cache", "version": 2, "entries": [1, 2]}',
        b'{"format": "prunex.tuning-cache", "version": 1, "entries": {}}',
        b'{"a || b || c": {"dense": "fast"}}',  # prunex 0.2's layout with a damaged timing
    ],
)
def test_prunex_s_own_damaged_cache_is_moved_aside_and_re_measured(tmp_path, content):
    path = tmp_path / "tuning.json"
    path.write_bytes(content)
    cache = TuningCache(path)
    assert cache.entries == {} and len(cache.warnings) == 1 and "moved to" in cache.warnings[0]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("tuning.json.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content
    cache.put("k || t || s", {"dense": 1.0})
    cache.save()
    assert TuningCache(path).entries == {"k || t || s": {"dense": 1.0}}


@pytest.mark.parametrize(
    "content", [b"\xff\xfe\x00", b"[]", b"null", b'{"k": "fast"}', b"{oops", b"", b'{"format": "other"}']
)
def test_a_file_that_is_not_a_tuning_cache_is_refused_untouched(tmp_path, content):
    path = tmp_path / "tuning.json"
    path.write_bytes(content)
    with pytest.raises(TuningCacheError, match="not a prunex tuning cache"):
        TuningCache(path)
    assert [p.name for p in tmp_path.iterdir()] == ["tuning.json"] and path.read_bytes() == content


def test_a_version_1_cache_is_read_and_written_back_as_version_2(tmp_path):
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps({"cpu | torch || eager fp32 batch 1 || conv": {"groups=4": 0.5, "dense": 0.25}}))
    cache = TuningCache(path)
    assert cache.get("cpu | torch || eager fp32 batch 1 || conv") == {"groups=4": 0.5, "dense": 0.25}
    cache.save()
    data = json.loads(path.read_text())
    assert data["format"] == "prunex.tuning-cache" and data["version"] == 2 and cache.entries == data["entries"]
    assert not cache.warnings


def test_a_cache_from_a_newer_prunex_is_refused_not_replaced(tmp_path):
    path = tmp_path / "tuning.json"
    path.write_text('{"format": "prunex.tuning-cache", "version": 9, "entries": {}}')
    with pytest.raises(TuningCacheError, match="newer prunex"):
        TuningCache(path)
    assert path.read_text().endswith('"entries": {}}')


# -- bench: a bench that measures nothing writes nothing; a default output never replaces an earlier one --------------
BENCH_FAST = ["--backend", "eager", "--batch", "1", "--iters", "1", "--warmup", "0", "--no-plots"]
BENCH_FAST += ["--reference", "none"]


def test_a_bench_that_can_measure_nothing_exits_2_and_keeps_the_earlier_one(world, monkeypatch):
    monkeypatch.chdir(world)
    assert invoke("bench", "run/compressed", *BENCH_FAST).exit_code == 0
    assert (world / "bench" / "bench.json").is_file()
    before, names = snapshot(world), listing(world)
    assert_refused(invoke("bench", "run/compressed", *BENCH_FAST, "--dtype", "fp16", "--device", "cpu"), "fp16")
    assert snapshot(world) == before and listing(world) == names


def test_a_bench_whose_every_row_fails_writes_nothing(world, monkeypatch):
    import prunex.runtime.backends as run_module  # where the eager backend is prepared

    def out_of_memory(case):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(run_module, "prepare_eager", out_of_memory)
    result = invoke("bench", world / "run/compressed", *BENCH_FAST, "--out", world / "b")
    assert_refused(result, "nothing could be measured", "out of memory")
    assert not (world / "b").exists()


def test_the_default_bench_output_is_numbered_and_a_given_one_needs_force(world, monkeypatch):
    monkeypatch.chdir(world)
    assert invoke("bench", "run/compressed", *BENCH_FAST).exit_code == 0
    first = snapshot(world / "bench")
    result = invoke("bench", "run/compressed", *BENCH_FAST)
    assert result.exit_code == 0 and "bench-2" in result.output
    assert snapshot(world / "bench") == first and (world / "bench-2" / "bench.json").is_file()
    assert_refused(invoke("bench", "run/compressed", *BENCH_FAST, "--out", "bench"), "--force")
    assert snapshot(world / "bench") == first
    assert invoke("bench", "run/compressed", *BENCH_FAST, "--out", "bench", "--force").exit_code == 0
    assert snapshot(world / "bench") != first


# -- mistakes that once ended in a traceback or in exit 0 --------------------------------------------------------------
def test_a_seed_beyond_64_bits_is_one_line(world):
    before = snapshot(world)
    result = invoke("train", "--out", world / "r", "--dataset", "synthetic", "--seed", "99999999999999999999")
    assert_refused(result, "seed", "4294967295")
    assert snapshot(world) == before and not (world / "r").exists()


def test_random_bytes_as_safetensors_weights_are_one_line(world):
    (world / "w.safetensors").write_bytes(os.urandom(2048))
    before = snapshot(world)
    result = invoke("train", "--out", world / "r", "--dataset", "synthetic", "--weights", world / "w.safetensors")
    assert_refused(result, "--weights", "w.safetensors")
    assert snapshot(world) == before and not (world / "r").exists()


def test_a_batch_larger_than_the_training_set_is_refused_before_any_work(world):
    result = invoke("train", "--out", world / "r", "--dataset", "digits", "--batch-size", "1000000")
    from prunex.data import load_dataset

    images = len(load_dataset("digits").train)
    assert_refused(result, "--batch-size 1,000,000", f"larger than the training set: {images:,} images")
    assert not (world / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_fp16_tuning_for_the_cpu_is_refused(world):
    before = snapshot(world)
    assert_refused(invoke("compress", world / "run", "--force", "--tune", "cache", "--target-dtype", "fp16"), "fp16")
    result = invoke("compress", world / "run", "--force", "--tune", "cache", "--target-backend", "cuda-graphs")
    assert_refused(result, "cuda-graphs")
    assert snapshot(world) == before


@pytest.mark.parametrize("shape", ['"1x3x16x16"', "[1, 3, 16]", '[1, 3, 16, "16"]', "[1, 0, 16, 16]", "7"])
def test_a_model_json_with_a_bad_input_shape_is_refused_by_export_and_bench(world, shape):
    spec_path = world / "run/compressed/model.json"
    spec = json.loads(spec_path.read_text())
    spec["input_shape"] = json.loads(shape)
    spec_path.write_text(json.dumps(spec))
    before = snapshot(world)
    assert_refused(invoke("export", world / "run/compressed", "--onnx", world / "m.onnx"), "input_shape")
    assert_refused(invoke("bench", world / "run/compressed", *BENCH_FAST, "--out", world / "b"), "input_shape")
    assert snapshot(world) == before and not (world / "b").exists()


def test_a_run_being_trained_is_said_to_be_busy_not_left_over(world):
    out = world / "r"
    with RunLock(out):  # another process has claimed the directory and written its config
        (out / "config.json").write_text('{"theirs": true}')
        result = invoke("train", "--out", out, "--dataset", "synthetic")
    assert_refused(result, "being written by prunex process", str(os.getpid()))
    assert "delete" not in result.output and (out / "config.json").read_text() == '{"theirs": true}'


# -- the fuzz: every output option pointed at every kind of existing file ----------------------------------------------
TARGETS = {
    "checkpoint": "run/checkpoint.pt",
    "run directory": "run",
    "compressed model": "run/compressed",
    "its weights": "run/compressed/model.safetensors",
    "its spec": "run/compressed/model.json",
    "tuning cache": "cache/tuning.json",
    "earlier export": "export/m.onnx",
    "earlier bench": "earlier-bench",
    "user file": "notes.txt",
    "user directory": "myproject",
    "empty directory": "empty",
}


def _command(kind: str, target: Path, root: Path, force: bool) -> list:
    fast = ["--tune", "off"]
    commands = {
        "export": ["export", root / "run/compressed", "--onnx", target],
        "export-gated": ["export", root / "run", "--onnx", target],
        "compress": ["compress", root / "run", "--out", target, *fast],
        "compress-cache": ["compress", root / "run", "--out", root / "c", "--tune", "cache", "--tuning-cache", target],
        "bench": ["bench", root / "run/compressed", *BENCH_FAST, "--out", target],
        "inspect": ["inspect", root / "run", "--no-plots", "--out", target],
        "train": ["train", "--dataset", "synthetic", "--epochs", "4", "--out", target],
    }
    return commands[kind] + (["--force"] if force and kind != "train" else [])


@pytest.fixture(scope="module")
def fuzz_world(pristine, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-world")
    shutil.copytree(pristine, root / "run")
    (root / "notes.txt").write_text("my notes\n")
    (root / "myproject").mkdir()
    (root / "myproject" / "main.py").write_text("print('hello')\n")
    (root / "empty").mkdir()
    cache = TuningCache(root / "cache" / "tuning.json")
    cache.put("x || y || z", {"dense": 1.0})
    cache.save()
    assert invoke("export", root / "run/compressed", "--onnx", root / "export/m.onnx").exit_code == 0
    assert invoke("bench", root / "run/compressed", *BENCH_FAST, "--out", root / "earlier-bench").exit_code == 0
    return root


# (command, target) pairs where the target is that command's own earlier output, which --force may replace (and
# a tuning run adds its timings to the cache it is given)
REPLACEABLE = {
    ("export", "earlier export", True),
    ("export-gated", "earlier export", True),
    ("bench", "earlier bench", True),
    ("compress", "compressed model", True),
    ("compress-cache", "tuning cache", True),
    ("compress-cache", "tuning cache", False),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["export", "export-gated", "compress", "compress-cache", "bench", "inspect", "train"]),
    target=st.sampled_from(sorted(TARGETS)),
    force=st.booleans(),
)
def test_outputs_pointed_at_existing_files_never_change_them(fuzz_world, tmp_path_factory, kind, target, force):
    if kind == "train" and target in ("empty directory", "user directory", "compressed model", "earlier bench"):
        target = "user file"  # a run may start in a directory holding no run files: that is training, not a fault
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(fuzz_world, root, dirs_exist_ok=True)
    before = everything = snapshot(root)
    result = invoke(*_command(kind, root / TARGETS[target], root, force))
    assert result.exit_code in (0, 2), (kind, target, result.output)
    assert "Traceback" not in result.output
    after = snapshot(root)
    if (kind, target, force) in REPLACEABLE:
        own = "export" if target == "earlier export" else TARGETS[target]  # an export's model and its report
        before = {k: v for k, v in before.items() if not (k == own or k.startswith(f"{own}/"))}
    assert {k: after.get(k) for k in before} == before, (kind, target, result.output)
    if result.exit_code == 2:
        assert after == everything, (kind, target, result.output)  # a refusal writes nothing at all
        assert len([ln for ln in result.stderr.splitlines() if ln.strip()]) == 1, result.stderr
