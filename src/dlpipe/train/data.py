"""Data loaders whose order is a pure function of (seed, epoch), sharded across DDP ranks.

The learner calls ``set_epoch(epoch)`` before each epoch. Shuffling uses a private
``torch.Generator`` seeded with ``seed + epoch``, and the DataLoader gets its own generator too
(DataLoader draws worker base seeds from the *global* torch RNG otherwise, which would make
the order of later batches depend on history and break exact resume).

Under DDP, rank r takes positions r, r+W, r+2W, ... of the same permutation, so batch j of every
rank together is exactly batch j of a single process with ``W`` times the batch size.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dlpipe.train import distributed as D


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
        if self.world > 1:
            idx += idx[: len(self) * self.world - self.n]     # pad so every rank has the same count
            idx = idx[self.rank :: self.world]
        return iter(idx)

    def __len__(self) -> int:
        return -(-self.n // self.world)


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
                num_workers: int = 0) -> SeededLoader:
    """A loader whose batch order is a pure function of (seed, epoch).

    Args:
        dataset: a map-style dataset.
        bs: batch size *per process* (under DDP the global batch is ``bs * world_size``).
        shuffle: reshuffle each epoch (ignored when ``sampler`` is given).
        seed: base seed of the order; epoch e uses ``seed + e``.
        drop_last: drop the last incomplete batch.
        collate_fn: as in DataLoader.
        sampler: a custom index sampler (e.g. sortish); it should implement ``set_epoch`` and,
            under DDP, do its own sharding.
        num_workers: worker processes; their seeds also derive from (seed, epoch).
    """
    if sampler is None:
        sampler = EpochSampler(len(dataset), shuffle, seed, D.rank(), D.world_size())
    return SeededLoader(dataset, batch_size=bs, sampler=sampler, drop_last=drop_last, collate_fn=collate_fn,
                        num_workers=num_workers, seed=seed, persistent_workers=False)


def set_epoch(dl, epoch: int) -> None:
    """Call ``set_epoch`` on a loader, or on its (batch) sampler, if it has one."""
    for obj in (dl, getattr(dl, "batch_sampler", None), getattr(dl, "sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
            return
