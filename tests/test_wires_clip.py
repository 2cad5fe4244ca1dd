"""Blending the two keyframes' fits of a frame between them (``clip.blend_fits``)."""

import numpy as np
import pytest

from propainter_wire.wires.clip import blend_fits
from propainter_wire.wires.curve import Axes, Curve
from propainter_wire.wires.track import WireFit


def _fit(row: float, carried_for: int) -> WireFit:
    axes = Axes(np.array([100.0, 0.0]), np.array([1.0, 0.0]))
    curve = Curve(axes, np.array([row]), -100.0, 100.0, -100.0, 100.0)
    return WireFit(curve, 2.0, 0.2 if carried_for else 1.0, carried_for > 0, 20.0, (-100.0, 100.0),
                   carried_for=carried_for)


@pytest.mark.parametrize("a, b, want", [(3, 5, 3), (6, 2, 2), (0, 4, 0), (4, 0, 0), (0, 0, 0)])
def test_blend_is_carried_as_long_as_the_better_side(a, b, want):
    """Carried from both keys: the shorter run (the curve nearer a frame where the wire was found);
    found from either side: not carried."""
    out = blend_fits(_fit(50.0, a), _fit(54.0, b), 0.5, 0.5)
    assert out.carried_for == want
    assert out.carried == (a > 0 and b > 0)
    assert 50.0 <= float(out.curve.v(np.array([0.0]))[0]) <= 54.0
