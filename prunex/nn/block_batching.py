"""C parallel blocks of one shape run as one grouped computation (the training path of multi-branch modules).

Blocks are stacked along the channel dimension, block-major: a batch of C block inputs x_1 … x_C of ``ch``
channels each is one tensor of C·ch channels (x_j at channels j·ch … (j+1)·ch − 1), in either memory format.
Then

- C 1×1 / 3×3 convolutions are one convolution with ``groups = C`` whose weight is the C weights concatenated
  (or, for C blocks reading one shared input, one ordinary convolution);
- C BatchNorms are one BatchNorm over C·ch channels: normalisation is per channel, so each block sees its own
  batch statistics exactly as before, and the running statistics go back to each block's module;
- a K-of-C aggregation x_j = Σ_k m_jk y_k is one matrix product over the block dimension.

That is a constant number of ops per module instead of one per block and layer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from prunex.nn.concat import concat
from prunex.nn.residual import BottleneckFunction, Projection


def can_batch_norms(bns: Sequence[nn.BatchNorm2d]) -> bool:
    """True if the BatchNorms agree in every setting, so one BatchNorm over their channels can stand for them."""
    first = bns[0]
    if first.momentum is None:  # a cumulative average needs its step count on the host
        return False
    settings = (first.eps, first.momentum, first.affine, first.track_running_stats)
    return all((b.eps, b.momentum, b.affine, b.track_running_stats) == settings for b in bns)


@torch.no_grad()
def _store_running_stats(bns: Sequence[nn.BatchNorm2d], mean: Tensor, var: Tensor) -> None:
    sizes = [b.num_features for b in bns]
    buffers = [b.running_mean for b in bns] + [b.running_var for b in bns]
    torch._foreach_copy_(buffers, [*mean.split(sizes), *var.split(sizes)])
    torch._foreach_add_([b.num_batches_tracked for b in bns], 1)


def batch_norm_blocks(bns: Sequence[nn.BatchNorm2d], x: Tensor) -> Tensor:
    """BN_j applied to channel block j of ``x`` for every j (block-major channels), running statistics included."""
    first = bns[0]
    weight = concat([b.weight for b in bns]) if first.affine else None
    bias = concat([b.bias for b in bns]) if first.affine else None
    use_batch_stats = first.training or not first.track_running_stats
    if not first.track_running_stats:
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, first.eps)
    mean = torch.cat([b.running_mean for b in bns])
    var = torch.cat([b.running_var for b in bns])
    out = F.batch_norm(x, mean, var, weight, bias, use_batch_stats, first.momentum, first.eps)
    if use_batch_stats:
        _store_running_stats(bns, mean, var)  # F.batch_norm updated the concatenated copies in place
    return out


def batch_norm_shared(bn: nn.BatchNorm2d, x: Tensor, blocks: int) -> Tensor:
    """One BatchNorm applied to each of ``blocks`` channel blocks of ``x`` in turn, as C calls of ``bn`` would:
    each block normalised with its own batch statistics, and the running statistics updated C times in order,
    r ← (1−m)^C·r + Σ_j m(1−m)^(C−j)·s_j."""
    weight = bn.weight.repeat(blocks) if bn.affine else None
    bias = bn.bias.repeat(blocks) if bn.affine else None
    if not (bn.training and bn.track_running_stats):
        mean = bn.running_mean.repeat(blocks) if bn.track_running_stats else None
        var = bn.running_var.repeat(blocks) if bn.track_running_stats else None
        return F.batch_norm(x, mean, var, weight, bias, bn.training, 0.0 if mean is None else bn.momentum, bn.eps)
    m = bn.momentum
    mean, var = bn.running_mean.repeat(blocks), bn.running_var.repeat(blocks)
    out = F.batch_norm(x, mean, var, weight, bias, True, m, bn.eps)
    # Each block's update u_j = (1−m)·r + m·s_j started from the same r; in turn they give
    # r_C = (1−m)^C·r + Σ_j (1−m)^(C−1−j)·(u_j − (1−m)·r) = a·r + Σ_j c_j·u_j.
    update = _sequential_update.__wrapped__ if torch.compiler.is_compiling() else _sequential_update
    a, c = update(m, blocks, mean.dtype, mean.device)
    with torch.no_grad():
        torch._foreach_mul_([bn.running_mean, bn.running_var], a)
        for running, updated in ((bn.running_mean, mean), (bn.running_var, var)):
            running.addmv_(updated.view(blocks, -1).t(), c)
        bn.num_batches_tracked.add_(blocks)
    return out


@functools.cache
def _sequential_update(m: float, blocks: int, dtype: torch.dtype, device: torch.device) -> tuple[float, Tensor]:
    """(a, c) with r_C = a·r + Σ_j c_j·u_j (see :func:`batch_norm_shared`); c is cached on the device."""
    c = [(1 - m) ** (blocks - 1 - j) for j in range(blocks)]
    return (1 - m) ** blocks - (1 - m) * sum(c), torch.tensor(c, dtype=dtype, device=device)


def grouped_conv(convs: Sequence[nn.Conv2d], x: Tensor, shared_input: bool = False) -> Tensor:
    """conv_j applied to channel block j of ``x`` (or, with ``shared_input``, each conv to all of ``x``)."""
    c = convs[0]
    if any(conv.groups != c.groups for conv in convs) or (shared_input and c.groups > 1):
        # convs of their own grouping (a network retrained from what DGConv learned): no one grouped conv is them
        inputs = [x] * len(convs) if shared_input else x.chunk(len(convs), dim=1)
        return torch.cat([conv(part) for conv, part in zip(convs, inputs, strict=True)], dim=1)
    bias = concat([conv.bias for conv in convs]) if c.bias is not None else None
    groups = c.groups * (1 if shared_input else len(convs))
    return F.conv2d(x, concat([conv.weight for conv in convs]), bias, c.stride, c.padding, c.dilation, groups)


def bottlenecks(blocks: Sequence[BottleneckFunction], x: Tensor, shared_input: bool = False) -> Tensor:
    """F_j(x_j) for every block j (:class:`BottleneckFunction`) as three grouped convolutions."""
    h = F.relu(batch_norm_blocks([b.bn1 for b in blocks], grouped_conv([b.conv1 for b in blocks], x, shared_input)))
    h = F.relu(batch_norm_blocks([b.bn2 for b in blocks], grouped_conv([b.conv2 for b in blocks], h)))
    return batch_norm_blocks([b.bn3 for b in blocks], grouped_conv([b.conv3 for b in blocks], h))


def projection_per_block(proj: Projection, x: Tensor, blocks: int) -> Tensor:
    """P(x_j) = BN(conv(x_j)) for every block j with one shared projection ``proj`` (weights shared): one
    convolution over the blocks folded into the batch where the layout allows it (contiguous ``x``), else a
    grouped convolution with the weight repeated."""
    conv = proj.conv
    n, channels, h, w = x.shape
    if x.is_contiguous():
        y = conv(x.view(n * blocks, channels // blocks, h, w))
        y = y.view(n, blocks * y.shape[1], *y.shape[2:])
    else:
        weight = conv.weight.repeat(blocks, 1, 1, 1)
        y = F.conv2d(x, weight, conv.bias, conv.stride, conv.padding, conv.dilation, blocks)
    return batch_norm_shared(proj.bn, y, blocks)


def can_batch_sequentials(sequences: Sequence[nn.Sequential]) -> bool:
    """True if the sequences are layer for layer the same kinds of Conv2d / BatchNorm2d / ReLU with equal settings,
    so that :func:`sequentials` can run them together."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU)
    first = sequences[0]
    for layers in zip(*sequences, strict=True):
        if not isinstance(layers[0], kinds) or any(type(m) is not type(layers[0]) for m in layers):
            return False
        if isinstance(layers[0], nn.BatchNorm2d) and not can_batch_norms(layers):
            return False
        if isinstance(layers[0], nn.Conv2d) and len({(m.stride, m.padding, m.dilation, m.groups) for m in layers}) > 1:
            return False
    return len(first) > 0 and all(len(s) == len(first) for s in sequences)


def sequentials(sequences: Sequence[nn.Sequential], x: Tensor) -> Tensor:
    """S_j(x) for every sequence j of Conv2d / BatchNorm2d / ReLU layers, all reading the one input ``x``: the
    outputs stacked block-major. A leading BatchNorm normalises C copies of ``x`` (one per sequence)."""
    blocks = len(sequences)
    h, shared = x, True
    for layers in zip(*sequences, strict=True):
        first = layers[0]
        if isinstance(first, nn.BatchNorm2d):
            if shared:
                h, shared = h.repeat(1, blocks, 1, 1), False
            h = batch_norm_blocks(layers, h)
        elif isinstance(first, nn.ReLU):
            h = F.relu(h)
        else:
            if first.groups != 1:
                raise ValueError("sequences of grouped convolutions cannot be batched")
            h, shared = grouped_conv(layers, h, shared_input=shared), False
    return h


def can_batch_bottlenecks(blocks: Sequence[BottleneckFunction]) -> bool:
    """True if the blocks can run as one grouped computation (equal settings, BatchNorms that agree)."""
    if len({tuple(b.conv2.stride) for b in blocks}) > 1:
        return False
    return all(can_batch_norms([getattr(b, name) for b in blocks]) for name in ("bn1", "bn2", "bn3"))


def _blocks_last(y: Tensor, blocks: int) -> tuple[Tensor, bool]:
    """``y`` viewed as (batch, C, ch) with the block dim in the middle, in its own memory order (no copy): per image
    (N, C, ch·H·W) when contiguous, per pixel (N·H·W, C, ch) when channels-last; and which of the two."""
    n, channels, h, w = y.shape
    if y.is_contiguous():
        return y.view(n, blocks, -1), False
    if y.is_contiguous(memory_format=torch.channels_last):
        return y.permute(0, 2, 3, 1).view(n * h * w, blocks, channels // blocks), True
    return _blocks_last(y.contiguous(), blocks)


def _from_blocks_last(flat: Tensor, like: Tensor, channels: int, channels_last: bool) -> Tensor:
    n, _, h, w = like.shape
    if channels_last:
        return flat.view(n, h, w, channels).permute(0, 3, 1, 2)
    return flat.view(n, channels, h, w)


def mix_blocks(mix: Tensor, y: Tensor) -> Tensor:
    """x_j = Σ_k mix[j, k]·y_k over the channel blocks of ``y`` (C blocks → J = mix.shape[0] blocks): one batched
    matrix product in the memory order of ``y`` (no layout copies)."""
    j, c = mix.shape
    flat, channels_last = _blocks_last(y, c)
    mixed = torch.bmm(mix.to(flat.dtype).expand(flat.shape[0], j, c), flat)
    return _from_blocks_last(mixed, y, j * (y.shape[1] // c), channels_last)


def sum_blocks(y: Tensor, blocks: int, mean: bool = False) -> Tensor:
    """Σ_k y_k (or its mean) over the ``blocks`` channel blocks of ``y``: one reduction, in the memory order of
    ``y``."""
    flat, channels_last = _blocks_last(y, blocks)
    total = flat.mean(1) if mean else flat.sum(1)
    return _from_blocks_last(total, y, y.shape[1] // blocks, channels_last)


def add_to_blocks(y: Tensor, s: Tensor) -> Tensor:
    """y_j + s for every channel block y_j of ``y`` (``s`` has one block's channels)."""
    blocks = y.shape[1] // s.shape[1]
    return (y.unflatten(1, (blocks, s.shape[1])) + s.unsqueeze(1)).flatten(1, 2)
