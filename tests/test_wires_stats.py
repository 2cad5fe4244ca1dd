"""numpy's medians without their checks: the same results to the bit."""

import numpy as np
import pytest

from propainter_wire.wires.stats import median, row_median


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [7, 8])
def test_row_median_is_numpys_to_the_bit(dtype, k):
    rng = np.random.default_rng(k)
    values = rng.uniform(0, 255, (300, k)).astype(dtype)
    values[::5, 1] = values[::5, 2]  # ties
    got = row_median(values)
    assert got.dtype == np.median(values, axis=1).dtype
    assert np.array_equal(got, np.median(values, axis=1))
    for row in values[:20]:
        assert median(row) == float(np.median(row))
    assert median(values[0, :1]) == float(values[0, 0])
