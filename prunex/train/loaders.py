"""The batches one process trains and evaluates on: its shard of the data, drawn on the device where it can be."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch.utils.data import DataLoader, DistributedSampler, Subset

from prunex.data import LoadedData, default_workers
from prunex.data.tensor_images import DeviceBatches, TensorImages
from prunex.train.config import ConfigError, TrainConfig
from prunex.train.distributed import DistContext


@dataclass
class Loaders:
    train: Iterable
    test: Iterable
    sampler: DistributedSampler  # its epoch is set before each training epoch (the shuffle's seed)


def check_batch_fits(batch_size: int, train_images: int, ranks: int) -> None:
    """A batch must fit in each rank's share of the training set (a larger one would train on one ragged batch
    an epoch, or none)."""
    share = train_images // ranks
    if batch_size > share:
        per = f" ({share:,} per process over {ranks})" if ranks > 1 else ""
        raise ConfigError(
            f"--batch-size {batch_size:,} is larger than the training set: {train_images:,} images{per}; "
            f"give at most {share:,}"
        )


def make_loaders(data: LoadedData, config: TrainConfig, ctx: DistContext, channels_last: bool) -> Loaders:
    """In-memory datasets are drawn and augmented on the device (:class:`DeviceBatches`); others go through a
    DataLoader with worker processes and pinned memory. Test batches are at least 256. Data is sharded along the
    data dimension: the ranks of a branch group get the same batches."""
    ranks, rank = ctx.data_size, ctx.data_rank
    sampler = DistributedSampler(data.train, num_replicas=ranks, rank=rank, shuffle=True, seed=config.seed)
    drop_last = len(data.train) // ranks > config.batch_size
    shard = list(range(rank, len(data.test), ranks))
    test_batch = max(config.batch_size, 256)
    if isinstance(data.train, TensorImages) and isinstance(data.test, TensorImages):
        cl, dev = channels_last, ctx.device
        train = DeviceBatches(data.train, config.batch_size, dev, sampler, drop_last, channels_last=cl)
        test = DeviceBatches(data.test, test_batch, dev, shard, augment=False, channels_last=cl)
        return Loaders(train, test, sampler)
    workers = default_workers() if config.workers is None else config.workers
    options = dict(num_workers=workers, pin_memory=ctx.device.type == "cuda", persistent_workers=workers > 0)
    train = DataLoader(data.train, batch_size=config.batch_size, sampler=sampler, drop_last=drop_last, **options)
    test = DataLoader(Subset(data.test, shard), batch_size=test_batch, **options)
    return Loaders(train, test, sampler)
