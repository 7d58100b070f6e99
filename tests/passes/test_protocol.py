"""Every compiler pass meets one protocol (torch.fx's PassBase → PassResult), and the runner reports what it says."""

import torch
from torch import nn
from torch.fx.passes.infra.pass_base import PassBase, PassResult

from prunex.models import create_model
from prunex.passes import CompressOptions, compress, default_passes
from prunex.passes.fold_batchnorm import FoldBatchNorm
from prunex.passes.graph import freeze, trace
from prunex.passes.lower_dgconv import LowerDGConv
from prunex.passes.tuning import Tuner, TuneTarget
from tests.passes.helpers import randomise_batchnorm


def test_every_default_pass_is_a_torch_fx_pass_with_its_own_name(tmp_path):
    from prunex.artifacts.tuning_cache import TuningCache

    tuner = Tuner(TuneTarget(), cache=TuningCache(tmp_path / "c.json"), timer=lambda m, s: 1.0)
    passes = default_passes(CompressOptions(tune="cache"), tuner, (3, 8, 8))
    assert all(isinstance(p, PassBase) for p in passes)
    names = [p.name for p in passes]
    assert len(set(names)) == len(names) == 11
    assert names[0] == "fold_gate_constants" and names[-1] == "choose_conv_realisations"


def test_a_pass_says_whether_it_changed_the_graph():
    conv_bn = trace(freeze(randomise_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval())))
    result = LowerDGConv()(conv_bn)  # no DGConv: nothing to lower
    assert isinstance(result, PassResult) and result.modified is False
    result = FoldBatchNorm()(conv_bn)
    assert result.modified is True
    assert not any(isinstance(m, nn.BatchNorm2d) for m in result.graph_module.modules())
    assert FoldBatchNorm()(result.graph_module).modified is False  # nothing left to fold


def test_the_report_records_which_passes_changed_the_network():
    torch.manual_seed(0)
    model = randomise_batchnorm(create_model("resnext_cifar", depth=11, cardinality=2, bottleneck_width=4)).eval()
    _, report = compress(model, torch.randn(2, 3, 16, 16))
    modified = {p.name: p.modified for p in report.passes}
    assert modified["fold_batchnorm"] and modified["merge_parallel_branches"]  # conv1 ∥ projection merge
    no_gates = ("fold_gate_constants", "eliminate_dead_blocks", "lower_dgconv", "propagate_permutations")
    assert not any(modified[name] for name in no_gates)  # a plain ResNeXt has no gates, dead blocks or gathers
