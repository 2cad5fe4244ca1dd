"""Thread pools for per-frame work: decoding, resizing, compositing and encoding.

OpenCV and the PNG codecs release the GIL, so a thread pool scales these with the cores.
Every function takes its thread count from the caller (``Tuning.threads()``: the tuning
switch ``io_threads``, default ``tuning.default_io_threads``: one per core up to 16, two fewer from
8 cores up, docs/tuning.md); none reads the environment. Results always come back in the order of their inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial

Mapper = Callable[[Callable, list], list]
"""``mapper(fn, items) -> [fn(x) for x in items]``, in order (``parallel_map`` with its threads, ``serial_map``)."""


def parallel_map(fn: Callable, items: Iterable, threads: int) -> list:
    """``[fn(x) for x in items]`` on a pool of ``threads`` threads, in order (1: on this thread)."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def serial_map(fn: Callable, items: Iterable) -> list:
    """``[fn(x) for x in items]``, in order on this thread (the stand-in for ``parallel_map`` where
    order matters, e.g. decoding a video)."""
    return [fn(x) for x in items]


def pool_mapper(threads: int) -> Mapper:
    """``parallel_map`` bound to ``threads`` threads, as a :data:`Mapper`."""
    return partial(parallel_map, threads=threads)


def batched_map(fn: Callable, indices: Iterable[int], threads: int, mapper: Mapper | None = None
                ) -> Iterator[tuple[int, object]]:
    """Yield ``(i, fn(i))`` for each of ``indices`` in order, mapped in batches of ``4 * threads`` by
    ``mapper`` (default: ``parallel_map`` on ``threads`` threads), so only one batch of results is
    held at a time."""
    mapper = pool_mapper(threads) if mapper is None else mapper
    indices = list(indices)
    batch = 4 * threads
    for lo in range(0, len(indices), batch):
        ids = indices[lo:lo + batch]
        yield from zip(ids, mapper(fn, ids), strict=True)
