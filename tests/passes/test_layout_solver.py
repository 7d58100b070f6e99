"""The layout solver on problems written by hand, without torch.fx: layout classes are plain strings.

The property test draws small problems (classes of 4 channels, random gathers between them, pinned identities,
grouped classes) and checks the solver against the brute force over every layout of every class."""

import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prunex.passes.layouts.problem import Concat, Gather, Pin, Problem, Slice
from prunex.passes.layouts.solver import solve, stored_index, within_groups
from prunex.passes.permutations import is_identity

N = 4
PERMS = [tuple(p) for p in itertools.permutations(range(N))]


def _problem(sizes, gathers=(), pins=(), groups=None, concats=(), slices=()) -> Problem:
    return Problem(
        size=dict(sizes),
        gathers=[Gather(None, x, y, torch.tensor(order), f"g{i}") for i, (x, y, order) in enumerate(gathers)],
        pins=[Pin(cls, None, None, f"pin {cls}") for cls in pins],
        groups={c: [(size, f"conv on {c}")] for c, size in (groups or {}).items()},
        concats=list(concats),
        slices=list(slices),
    )


def _brute_force(problem: Problem) -> int:
    """The fewest gathers left plus pins given up over every layout of every class (plain tuples: fast)."""
    classes = sorted(problem.size)
    options = [
        [p for p in PERMS if all(within_groups(torch.tensor(p), s) for s, _ in problem.groups.get(c, []))]
        for c in classes
    ]
    gathers = [(g.x, g.y, tuple(g.order.tolist())) for g in problem.gathers]
    identity = tuple(range(N))
    best = None
    for choice in itertools.product(*options):
        layout = dict(zip(classes, choice, strict=True))
        cost = sum(not _stays_identity(layout[x], layout[y], order) for x, y, order in gathers)
        cost += sum(layout[p.cls] != identity for p in problem.pins)
        best = cost if best is None else min(best, cost)
    return best


def _stays_identity(s_x: tuple, s_y: tuple, order: tuple) -> bool:
    """stored y[:, j] = stored x[:, σ_x⁻¹[p[σ_y[j]]]] is the identity: the gather can go."""
    inverse = {v: i for i, v in enumerate(s_x)}
    return all(inverse[order[s_y[j]]] == j for j in range(N))


def _check(problem: Problem) -> int:
    """The solution meets every constraint it claims; returns what it leaves (gathers kept + pins released)."""
    solution = solve(problem)
    layout = solution.layout
    for i in solution.removed:
        assert is_identity(stored_index(problem.gathers[i], layout))
    for j, pin in enumerate(problem.pins):
        assert j in solution.released or is_identity(layout[pin.cls])
    for cls, sizes in problem.groups.items():
        assert all(within_groups(layout[cls], s) for s, _ in sizes)
    return len(problem.gathers) - len(solution.removed) + len(solution.released)


def test_a_gather_between_free_classes_goes():
    problem = _problem({"a": N, "b": N}, gathers=[("a", "b", (2, 0, 3, 1))])
    assert _check(problem) == 0


def test_a_gather_between_two_pinned_identities_stays_and_names_nothing_else():
    problem = _problem({"a": N, "b": N}, gathers=[("a", "b", (2, 0, 3, 1))], pins=["a", "b"])
    assert _check(problem) == 1


def test_a_grouped_class_takes_only_permutations_within_its_groups():
    within = _problem({"a": N, "b": N}, gathers=[("a", "b", (1, 0, 3, 2))], pins=["a"], groups={"b": 2})
    across = _problem({"a": N, "b": N}, gathers=[("a", "b", (2, 3, 0, 1))], pins=["a"], groups={"b": 2})
    assert _check(within) == 0 and _check(across) == 1


def test_a_concatenation_passes_each_parts_layout_and_a_slice_takes_its_block():
    problem = _problem(
        {"p": 2, "q": 2, "cat": N, "src": N, "part": 2},
        gathers=[("src", "cat", (1, 0, 3, 2))],
        pins=["p", "q"],
        concats=[Concat(None, "cat", ["p", "q"], [2, 2], "cat")],
        slices=[Slice(None, "src", "part", 0, 2, "slice")],
    )
    assert _check(problem) == 0  # src takes (1, 0, 3, 2); its slice's part is (1, 0)


problems = st.builds(
    lambda sizes, gathers, pins, grouped: _problem(
        {c: N for c in sizes},
        gathers=[(sizes[x % len(sizes)], sizes[y % len(sizes)], PERMS[k]) for x, y, k in gathers],
        pins=[sizes[i % len(sizes)] for i in pins],
        groups={sizes[i % len(sizes)]: 2 for i in grouped},
    ),
    st.lists(st.sampled_from("abc"), min_size=2, max_size=3, unique=True),
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, len(PERMS) - 1)), min_size=1, max_size=3),
    st.lists(st.integers(0, 2), max_size=2, unique=True),
    st.lists(st.integers(0, 2), max_size=1, unique=True),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(problem=problems)
def test_the_solver_leaves_the_brute_force_minimum(problem):
    assert _check(problem) == _brute_force(problem)
