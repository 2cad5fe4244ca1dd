"""``io.channels.pick_channels``: the same values as numpy's indexing, interleaved, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from propainter_wire.io.channels import pick_channels

ORDERS = {1: [(0,), (0, 0)], 2: [(0, 1), (1, 0), (0,)], 3: [(2, 1, 0), (0, 1, 2), (1,), (0, 0, 2)],
          4: [(2, 1, 0, 3), (0, 1, 2, 3), (2, 1, 0), (3,), (0, 3)], 5: [(2, 1, 0, 3, 4), (4, 3, 2, 1, 0)]}


def random_pixels(dtype, channels: int, rng) -> np.ndarray:
    shape = (7, 13, channels)
    if dtype == np.float32:
        bits = rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)
        pixels = bits.view(np.float32)  # every pattern: NaNs with payloads, infinities, -0.0, denormals
        pixels[0, 0] = np.nan
        return pixels
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.int16])
@pytest.mark.parametrize("channels", sorted(ORDERS))
def test_pick_channels_matches_indexing_bit_for_bit(dtype, channels):
    rng = np.random.default_rng(channels)
    pixels = random_pixels(dtype, channels, rng)
    for order in ORDERS[channels]:
        got = pick_channels(pixels, order)
        expected = pixels[:, :, list(order)]
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert got.flags["C_CONTIGUOUS"]
        assert got.tobytes() == np.ascontiguousarray(expected).tobytes(), order


def test_pick_channels_takes_strided_input_and_leaves_it_alone():
    rng = np.random.default_rng(0)
    wide = random_pixels(np.uint8, 3, rng)
    strided = np.repeat(wide, 2, axis=1)[:, ::2]  # not contiguous
    before = strided.copy()
    got = pick_channels(strided, (2, 1, 0))
    assert got.tobytes() == np.ascontiguousarray(strided[:, :, ::-1]).tobytes()
    np.testing.assert_array_equal(strided, before)


def test_pick_channels_in_order_returns_a_contiguous_input_itself():
    pixels = np.zeros((4, 5, 3), np.uint8)
    assert pick_channels(pixels, (0, 1, 2)) is pixels
    with pytest.raises(ValueError, match="H, W, C"):
        pick_channels(pixels[:, :, 0], (0,))
