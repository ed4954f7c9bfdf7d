"""Data loaders whose order is a pure function of (seed, epoch), sharded across DDP ranks.

The learner calls ``set_epoch(epoch)`` before each epoch. Shuffling uses a private
``torch.Generator`` seeded with ``seed + epoch``, and the DataLoader gets its own generator too
(DataLoader draws worker base seeds from the *global* torch RNG otherwise, which would make
the order of later batches depend on history and break exact resume).

Batch sizes are *global*: under DDP with ``W`` processes each loads ``bs / W`` rows, and rank r takes
positions r, r+W, r+2W, ... of the same order, so batch j of every rank together is exactly batch j
of a single process. Params keep their meaning (and results match within float error) whatever
the number of processes.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from dlpipe.core.errors import ParamsError
from dlpipe.train import distributed as D


def shard(idx: list[int], rank: int, world: int) -> list[int]:
    """Rank ``rank``'s positions of ``idx``: padded by wrapping round to a multiple of ``world`` (every
    rank gets the same count, so collectives stay in step), then every ``world``-th from ``rank``."""
    if world == 1:
        return idx
    n = -(-len(idx) // world) * world
    idx = (idx * (-(-n // len(idx)) if idx else 0))[:n]
    return idx[rank::world]


def per_rank(bs: int, world: int) -> int:
    """Rows per process of a global batch of ``bs`` (a multiple of the process count)."""
    if bs % world:
        raise ParamsError(f"batch size {bs} does not split evenly over {world} training processes "
                         f"(runtime.nproc_per_node x nodes): use a multiple of {world}")
    return bs // world


class EpochSampler(Sampler[int]):
    """Indices of ``n`` items: ``randperm(seed + epoch)`` if shuffling, padded and sharded for DDP."""

    def __init__(self, n: int, shuffle: bool, seed: int, rank: int = 0, world: int = 1):
        self.n, self.shuffle, self.seed, self.rank, self.world = n, shuffle, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            idx = torch.randperm(self.n, generator=g).tolist()
        else:
            idx = list(range(self.n))
        return iter(shard(idx, self.rank, self.world))

    def __len__(self) -> int:
        return -(-self.n // self.world)


class ShardedSampler(Sampler[int]):
    """Rank ``rank``'s share of any index sampler's order (see :func:`shard`); ``set_epoch`` passes on."""

    def __init__(self, sampler: Sampler, rank: int, world: int):
        self.sampler, self.rank, self.world = sampler, rank, world

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(shard(list(self.sampler), self.rank, self.world))

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.world)


class Batches(BatchSampler):
    """torch's BatchSampler, optionally dropping a final batch of a single row (``drop_single``).

    BatchNorm cannot normalise one row in training ("Expected more than 1 value per channel"), and
    ``n % bs == 1`` happens (a low-label subset, a split of odd size). ``drop_last`` would throw away
    up to ``bs - 1`` rows every epoch; this drops at most the one.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False, drop_single: bool = False):
        super().__init__(sampler, batch_size, drop_last)
        self.drop_single = drop_single and batch_size > 1

    def __iter__(self):
        for b in super().__iter__():
            if not (self.drop_single and len(b) == 1):
                yield b

    def __len__(self) -> int:
        n = super().__len__()
        return n - 1 if self.drop_single and not self.drop_last and len(self.sampler) % self.batch_size == 1 else n


class SeededLoader(DataLoader):
    """A DataLoader with ``set_epoch``: re-seeds its sampler and its worker-seed generator."""

    def __init__(self, *args, seed: int = 0, **kwargs):
        super().__init__(*args, generator=torch.Generator().manual_seed(seed), **kwargs)
        self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + 1_000_003 * (epoch + 1))
        sampler = self.batch_sampler.sampler if self.batch_sampler is not None else self.sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)


def make_loader(dataset: Dataset, bs: int, shuffle: bool, seed: int, drop_last: bool = False,
                collate_fn: Optional[Callable] = None, sampler: Optional[Sampler] = None,
                num_workers: int = 0, drop_single: bool = False) -> SeededLoader:
    """A loader whose batch order is a pure function of (seed, epoch).

    Args:
        dataset: a map-style dataset.
        bs: *global* batch size; under DDP each of the W processes loads ``bs / W`` rows of it.
        shuffle: reshuffle each epoch (ignored when ``sampler`` is given).
        seed: base seed of the order; epoch e uses ``seed + e``.
        drop_last: drop the last incomplete batch.
        collate_fn: as in DataLoader.
        sampler: a custom index sampler (e.g. sortish) over global batches of ``bs``; it should
            implement ``set_epoch``. Under DDP it is sharded like the default one.
        num_workers: worker processes; their seeds also derive from (seed, epoch).
        drop_single: drop a final batch of one row (training through BatchNorm), see :class:`Batches`.
    """
    rank, world = D.rank(), D.world_size()
    if sampler is None:
        sampler = EpochSampler(len(dataset), shuffle, seed, rank, world)
    elif world > 1:
        sampler = ShardedSampler(sampler, rank, world)
    batches = Batches(sampler, per_rank(bs, world), drop_last, drop_single)
    return SeededLoader(dataset, batch_sampler=batches, collate_fn=collate_fn,
                        num_workers=num_workers, seed=seed, persistent_workers=False)


def set_epoch(dl, epoch: int) -> None:
    """Call ``set_epoch`` on a loader, or on its (batch) sampler, if it has one."""
    for obj in (dl, getattr(dl, "batch_sampler", None), getattr(dl, "sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
            return
