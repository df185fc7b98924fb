"""Deterministic, resumable, rank-aware data loading.

``ClipSampler`` yields ``(index, seed)`` keys: the order and every clip's random start/crop/flip depend only on
(seed, epoch, position), never on the number of workers or on which process decodes the clip. Resuming after
``start`` consumed samples continues the exact same stream.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from vidsynth.data.base import seed_for


class ClipSampler(Sampler):
    """Shuffled epochs over ``n`` items, split across ``world_size`` ranks (each rank gets ``ceil(n / world)``
    items an epoch, wrapping around like DistributedSampler). Endless unless ``epochs`` is given.

    ``start`` = samples this rank has already consumed (a training run's resume point).
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 start: int = 0, epochs: int | None = None):
        assert n > 0 and 0 <= rank < world_size
        self.n, self.seed, self.shuffle, self.rank, self.world_size = n, seed, shuffle, rank, world_size
        self.start, self.epochs = start, epochs
        self.per_rank = -(-n // world_size)

    def epoch_order(self, epoch: int) -> list[int]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed_for(self.seed, epoch)))
        else:
            order = torch.arange(self.n)
        order = order.repeat(-(-self.per_rank * self.world_size // self.n))[: self.per_rank * self.world_size]
        return order[self.rank:: self.world_size].tolist()

    def __iter__(self):
        epoch, position = divmod(self.start, self.per_rank)
        while self.epochs is None or epoch < self.epochs:
            order = self.epoch_order(epoch)
            for pos in range(position, self.per_rank):
                yield order[pos], seed_for(self.seed, epoch, pos * self.world_size + self.rank)
            epoch, position = epoch + 1, 0

    def __len__(self) -> int:
        if self.epochs is None:
            raise TypeError("an endless ClipSampler has no length")
        return self.epochs * self.per_rank - self.start


def _seed_worker(worker_id: int) -> None:
    # third-party code in a worker may use numpy/random; tie them to the loader's seeded torch stream
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset, batch_size: int, *, num_workers: int = 0, seed: int = 0, shuffle: bool = True,
                rank: int = 0, world_size: int = 1, start: int = 0, epochs: int | None = None,
                drop_last: bool = True) -> DataLoader:
    """DataLoader over ``dataset`` with a ``ClipSampler``. Decodes the dataset into RAM first when it fits
    (``cache=auto``), so forked workers share one copy instead of decoding every epoch."""
    if hasattr(dataset, "warm_cache"):
        dataset.warm_cache()
    sampler = ClipSampler(len(dataset), seed, shuffle, rank, world_size, start, epochs)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=drop_last, worker_init_fn=_seed_worker if num_workers else None,
                      generator=torch.Generator().manual_seed(seed), persistent_workers=num_workers > 0)
