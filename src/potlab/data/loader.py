"""Batches in order, prefetched by DataLoader worker processes when the data is lazy.

:func:`iter_batches` is the one loop over training data: for in-memory data it calls
``data.batch(idx)`` directly; for lazy data (frames read from the file and neighbour
graphs built per batch) torch DataLoader workers do that ahead of the model. A bad frame
met in a worker is re-raised in this process as the same :class:`DataError` (torch would
turn it into a RuntimeError), so a run stops with potlab's input-error exit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from potlab.errors import InputError


class _Failure:
    """An input error raised in a worker, carried back as a value."""

    def __init__(self, error: InputError) -> None:
        self.error = error


class _Batches:
    """A map-style dataset: item k is ``data.batch(batches[k])``.

    The indices are kept in two numpy arrays, not as Python lists: a forked worker that
    reads a Python object writes its reference count, which copies the page it sits on,
    so lists of an epoch's indices would be copied into every worker bit by bit."""

    def __init__(self, data, batches: Sequence[Sequence[int]]) -> None:
        self.data = data
        sizes = np.fromiter((len(b) for b in batches), dtype=np.int64, count=len(batches))
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        self._flat = np.fromiter((i for b in batches for i in b), dtype=np.int64,
                                 count=int(self._offsets[-1]))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, k: int):
        try:
            return self.data.batch(self._flat[self._offsets[k]:self._offsets[k + 1]].tolist())
        except InputError as err:
            return _Failure(err)


def _init_worker(_: int) -> None:
    import torch

    torch.set_num_threads(1)  # graph building is numpy/vesin; leave the cores to the model


def iter_batches(data, batches: Sequence[Sequence[int]], num_workers: int = 0,
                 prefetch: int = 4) -> Iterator[tuple[Any, dict]]:
    """``data.batch(idx)`` for each ``idx`` of ``batches``, in order.

    ``data`` is a :class:`~potlab.train.prepared.Prepared` (in memory: batched here) or a
    lazy one (``data.lazy`` true: batched by ``num_workers`` DataLoader worker processes,
    ``prefetch`` batches ahead each; ``num_workers=0`` batches here). Stopping early
    (``break``) shuts the workers down.
    """
    if not getattr(data, "lazy", False) or num_workers <= 0:
        for idx in batches:
            yield data.batch(list(idx))
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(_Batches(data, batches), batch_size=None, shuffle=False,
                        num_workers=int(num_workers), prefetch_factor=int(prefetch),
                        worker_init_fn=_init_worker, persistent_workers=False)
    it = iter(loader)
    try:
        for item in it:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        del it
