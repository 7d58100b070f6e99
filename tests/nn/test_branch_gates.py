import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prunex.nn.branch_gates import (
    BranchGates,
    aggregate_branches,
    aggregate_branches_stacked,
    sample_k_of_c,
    topk_mask,
)


@st.composite
def mask_rows(draw):
    c = draw(st.integers(1, 12))
    k = draw(st.integers(1, c))
    rows = draw(st.integers(1, 6))
    values = draw(
        st.lists(
            st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=c, max_size=c),
            min_size=rows,
            max_size=rows,
        )
    )
    return torch.tensor(values, dtype=torch.float32), k


@settings(max_examples=200, deadline=None)
@given(mask_rows(), st.integers(0, 2**31 - 1))
def test_sampler_draws_k_distinct_and_never_a_zero_probability_branch(case, seed):
    probs, k = case
    mask = sample_k_of_c(probs, k, torch.Generator().manual_seed(seed))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(mask.sum(1) == k)  # K ones: distinct indices, exactly K of them
    positive = probs > 0
    enough = positive.sum(1) >= k
    assert not torch.any(mask[enough].bool() & ~positive[enough])  # zero-probability branches are never picked
    assert torch.all(mask[~enough].bool() | ~positive[~enough])  # short rows keep every positive entry


def test_sampler_follows_the_multinomial_for_k1():
    p = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).repeat(20000, 1)
    freq = sample_k_of_c(p, 1, torch.Generator().manual_seed(0)).mean(0)
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015, rtol=0)


def test_learned_gates_sample_in_training_and_are_deterministic_top_k_in_eval():
    torch.manual_seed(0)
    gates = BranchGates(8, 8, 3)
    masks = {tuple(gates().detach().flatten().tolist()) for _ in range(10)}
    assert len(masks) > 1  # stochastic while training
    gates.eval()
    assert torch.equal(gates(), gates())
    assert torch.equal(gates(), topk_mask(gates.weight, 3, gates.priority))
    assert torch.all(gates().sum(1) == 3)


def test_straight_through_gradient_reaches_the_real_mask():
    torch.manual_seed(0)
    gates = BranchGates(4, 4, 2)
    ys = [torch.randn(2, 3, 4, 4) for _ in range(4)]
    xs = aggregate_branches_stacked(gates(), ys)
    sum((x * (j + 1)).sum() for j, x in enumerate(xs)).backward()
    assert gates.weight.grad is not None
    # ∂ℓ/∂m_jk = <∂ℓ/∂x_j, y_k> for every k, sampled or not
    expected = torch.stack([torch.stack([(j + 1) * y.sum() for y in ys]) for j in range(4)])
    torch.testing.assert_close(gates.weight.grad, expected)


def test_projection_clips_and_keeps_k_positive_entries():
    gates = BranchGates(3, 5, 2)
    with torch.no_grad():
        gates.weight.copy_(torch.tensor([[1.7, -0.2, 0.5, 0.3, 0.1], [-1, -1, -1, -1, 0.4], [-1, -1, -1, -1, -1.0]]))
    gates.project_()
    w = gates.weight
    assert w.min() >= 0 and w.max() <= 1
    assert torch.all((w > 0).sum(1) >= 2)
    assert w[0, 0] == 1.0 and w[0, 1] == 0.0 and w[0, 2] == 0.5


def test_fixed_full_is_all_ones_and_deterministic():
    gates = BranchGates(8, 8, 8, "fixed_full")
    assert gates.weight is None
    assert torch.equal(gates(), torch.ones(8, 8))
    gates.eval()
    assert torch.equal(gates(), torch.ones(8, 8))
    with pytest.raises(ValueError, match="K = C"):
        BranchGates(8, 8, 4, "fixed_full")


def test_fixed_random_keeps_k_random_connections():
    gates = BranchGates(8, 8, 4, "fixed_random", torch.Generator().manual_seed(1))
    first = gates().clone()
    assert torch.all(first.sum(1) == 4)
    assert torch.equal(gates(), first)
    assert len({tuple(r.tolist()) for r in first}) > 1


def test_freeze_fixes_top_k():
    torch.manual_seed(0)
    gates = BranchGates(6, 6, 2)
    expected = topk_mask(gates.weight, 2, gates.priority)
    gates.freeze()
    assert gates.frozen and gates.weight is None
    assert torch.equal(gates(), expected)


def test_term_by_term_and_stacked_aggregation_agree():
    mask = sample_k_of_c(torch.rand(5, 5), 2)
    ys = [torch.randn(2, 3, 4, 4) for _ in range(5)]
    for a, b in zip(aggregate_branches(mask, ys, 5), aggregate_branches_stacked(mask, ys), strict=True):
        torch.testing.assert_close(a, b)


def test_ties_are_broken_by_a_fixed_priority_not_by_index():
    gates = BranchGates(8, 8, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gates.weight.fill_(1.0)  # saturated masks: every entry ties
    gates.eval()
    picks = gates().argmax(1)
    assert len(set(picks.tolist())) > 1  # not everyone reads branch 0
    assert torch.equal(gates(), gates())  # still deterministic
    assert torch.equal(picks, gates.priority.argmax(1))
    plain = topk_mask(torch.ones(3, 4), 2)
    assert torch.equal(plain, torch.tensor([[1.0, 1, 0, 0]] * 3))  # without a priority: lowest index


def test_projection_after_an_optimizer_step_clips_learned_masks_into_0_1():
    from prunex.nn.gates import project_gates_

    model = torch.nn.Module()
    model.gates = BranchGates(3, 3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    model.gates.weight.grad = torch.tensor([[-1.0, 1.0, 0.0]] * 3)  # one big step: far beyond 1 and below 0
    opt.step()
    assert float(model.gates.weight.max()) > 1.0 and float(model.gates.weight.min()) < 0.0
    before = model.gates.weight.detach().clone()
    project_gates_(model)
    assert torch.equal(model.gates.weight, before.clamp(0, 1))


def _multinomial_mask(probs, k, generator):
    """The sampler before prunex 0.2: torch.multinomial without replacement (it reads values back to the host)."""
    idx = torch.multinomial(probs.to(torch.float64), k, replacement=False, generator=generator)
    return torch.zeros_like(probs).scatter(1, idx, 1.0)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_sampler_draws_what_torch_multinomial_draws_for_the_same_generator(k, seed):
    gen = torch.Generator().manual_seed(seed)
    probs = torch.rand(6, 8, generator=gen)
    probs[probs < 0.2] = 0
    probs[:, :k] += 0.5  # at least k positive entries per row
    a, b = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for _ in range(3):  # and the generator state moves on in step
        assert torch.equal(sample_k_of_c(probs, k, a), _multinomial_mask(probs, k, b))


def test_sampling_and_projection_never_wait_for_the_device():
    from prunex.nn.branch_gates import priority_order, project_masks_
    from prunex.runtime.dispatch_count import DispatchCounter

    gates = [BranchGates(8, 8, 4, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    with DispatchCounter() as counter:
        masks = [g() for g in gates]
        sum((m * torch.arange(64.0).view(8, 8)).sum() for m in masks).backward()
        project_masks_([g.weight for g in gates], 4, priority_order(torch.stack([g.priority for g in gates])))
    assert counter.counts.syncs == 0, counter.counts.host_syncs
    assert all(g.weight.grad is not None for g in gates)


def test_batched_projection_equals_the_projection_of_each_mask():
    from prunex.nn.branch_gates import priority_order, project_masks_

    gen = torch.Generator().manual_seed(0)
    gates = [BranchGates(4, 6, 3, generator=gen) for _ in range(3)]
    with torch.no_grad():
        for g in gates:
            g.weight.copy_(torch.randn(4, 6, generator=gen))  # rows with fewer than 3 positive entries
    singles = [BranchGates(4, 6, 3) for _ in range(3)]
    for s, g in zip(singles, gates, strict=True):
        s.load_state_dict(g.state_dict())
        s.project_()
    project_masks_([g.weight for g in gates], 3, priority_order(torch.stack([g.priority for g in gates])))
    for s, g in zip(singles, gates, strict=True):
        assert torch.equal(s.weight, g.weight)
        assert torch.all((g.weight > 0).sum(1) >= 3) and g.weight.max() <= 1
