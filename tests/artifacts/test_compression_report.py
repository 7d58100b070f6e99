"""Reports written by older prunex versions read as current ones (the documented migration)."""

import json

import torch
from rich.console import Console
from torch import nn

from prunex.artifacts.compression_report import KeptGather, PassRecord, Totals, read_report
from prunex.cli.views.inspect import print_summary
from prunex.inspection import summarise
from prunex.passes import compress


def _current_report() -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    _, report = compress(model.eval(), torch.randn(2, 3, 6, 6))
    return json.loads(json.dumps(report.to_json()))


def _as_written_before_0_3(report: dict) -> dict:
    old = dict(report)
    t = dict(old["totals"])
    t["flops_before"], t["flops_after"] = t.pop("macs_before"), t.pop("macs_after")
    old["totals"] = t
    old["passes"] = [{("flops" if k == "macs" else k): v for k, v in p.items()} for p in old["passes"]]
    old["gathers_remaining"] = ["index_select_1"]
    return old


def test_an_old_report_reads_as_a_current_one(tmp_path):
    current = _current_report()
    (tmp_path / "new.json").write_text(json.dumps(current))
    (tmp_path / "old.json").write_text(json.dumps(_as_written_before_0_3(current)))
    new = read_report(tmp_path / "new.json")
    assert new.to_json() == current  # a current report is read unchanged, every field typed
    assert isinstance(new.totals, Totals) and all(isinstance(p, PassRecord) for p in new.passes)
    old = read_report(tmp_path / "old.json")
    assert old.totals == new.totals and old.passes == new.passes
    assert old.gathers_remaining == [KeptGather("index_select_1", None)]
    console = Console(record=True, width=200)
    summary = summarise(nn.Sequential(nn.Conv2d(3, 4, 3)), old)
    print_summary(console, summary)
    text = console.export_text()
    assert f"MACs {current['totals']['macs_before']:,}" in text and "gather kept: index_select_1" in text


def test_unreadable_reports_are_none(tmp_path):
    (tmp_path / "bad.json").write_bytes(b"\xff{")
    (tmp_path / "list.json").write_text("[1]")
    assert read_report(tmp_path / "bad.json") is None
    assert read_report(tmp_path / "list.json") is None
    assert read_report(tmp_path / "missing.json") is None
