"""The runner's thread pools: results in the order of their inputs, batches of 4 * threads."""

from __future__ import annotations

import threading

import pytest

from propainter_wire.runner.threads import batched_map, parallel_map, pool_mapper, serial_map


@pytest.mark.parametrize("threads", [1, 3])
def test_parallel_map_keeps_the_order(threads):
    assert parallel_map(lambda x: x * x, range(20), threads) == [x * x for x in range(20)]


def test_one_thread_runs_on_the_caller():
    seen = set()
    parallel_map(lambda x: seen.add(threading.get_ident()), range(5), 1)
    assert seen == {threading.get_ident()}


@pytest.mark.parametrize("mapper", [None, serial_map, pool_mapper(2)])
def test_batched_map_yields_every_index_in_order_in_batches(mapper):
    calls = []

    def counting(fn, ids):
        calls.append(len(ids))
        return (mapper or pool_mapper(2))(fn, ids)

    out = list(batched_map(lambda i: -i, range(19), 2, counting))
    assert out == [(i, -i) for i in range(19)]
    assert calls == [8, 8, 3]  # 4 * threads per batch
