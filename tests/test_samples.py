"""Sample-type conversions: round trips, the two 8-bit roundings, the threaded unit -> uint8."""

from __future__ import annotations

import numpy as np
import pytest

from propainter_wire import samples


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
