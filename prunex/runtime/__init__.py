"""The bottom layer's measuring half: execution cases (eager, CUDA graphs, torch.compile), timing, environment
capture, numerical comparison, ATen dispatch counting. It imports nothing from the rest of prunex."""

from prunex.runtime.cases import BackendUnavailable, Case, prepare_compile, prepare_cuda_graphs, prepare_eager
from prunex.runtime.comparison import compare, exact_float32
from prunex.runtime.dispatch_count import DispatchCounter, DispatchCounts
from prunex.runtime.environment import environment
from prunex.runtime.timing import COV_WARNING, LatencyStats, percentile, summarise, time_callable

__all__ = [
    "COV_WARNING",
    "BackendUnavailable",
    "Case",
    "DispatchCounter",
    "DispatchCounts",
    "LatencyStats",
    "compare",
    "environment",
    "exact_float32",
    "percentile",
    "prepare_compile",
    "prepare_cuda_graphs",
    "prepare_eager",
    "summarise",
    "time_callable",
]
