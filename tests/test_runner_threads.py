"""The runner's thread pools and the sample-type conversions: order kept, arithmetic as documented."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from propainter_wire import samples
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


def test_unit_conversions_round_trip():
    u8 = np.arange(256, dtype=np.uint8)
    u16 = np.array([0, 1, 256, 32768, 65535], np.uint16)
    assert np.array_equal(samples.from_unit(samples.to_unit(u8), np.uint8), u8)
    assert np.array_equal(samples.from_unit(samples.to_unit(u16), np.uint16), u16)
    assert samples.to_unit(np.array([-0.5, 2.0], np.float32)).tolist() == [0.0, 1.0]
    assert samples.unit_frames(u8).dtype == np.float32


def test_the_two_8_bit_roundings():
    u16 = np.array([0, 128, 256, 65535], np.uint16)
    assert samples.to_uint8(u16).tolist() == [0, 0, 0, 255]  # the high byte
    assert samples.to_uint8_half_up(u16).tolist() == [0, 0, 1, 255]  # nearest
    half = np.array([0.5 / 255, 1.5 / 255], np.float64)
    assert samples.to_uint8(half).tolist() == [0, 2]  # ties to even
    assert samples.to_uint8_half_up(half).tolist() == [1, 2]  # ties up


def test_threaded_unit_to_uint8_matches_numpy():
    pytest.importorskip("torch")
    x = np.random.default_rng(0).uniform(-0.1, 1.1, (3, 8, 9, 3)).astype(np.float32)
    assert np.array_equal(samples.unit_to_uint8_threaded(x), samples.unit_to_uint8(x))
    u8 = x.astype(np.uint8)
    assert samples.unit_to_uint8_threaded(u8) is u8
