"""The mask drawn from a fit: its band, how it widens past the span where the wire was seen, and how a
curve carried for frames widens."""

import numpy as np
import pytest

from propainter_wire.wires.curve import Axes, Curve
from propainter_wire.wires.render import (
    CARRY_SPREAD,
    CARRY_SPREAD_MAX,
    END_SPREAD,
    END_SPREAD_MAX,
    carry_spread,
    half_width,
    render_mask,
)
from propainter_wire.wires.track import WireFit

H, W, ROW = 120, 200, 60


def _level_fit(seen: tuple[float, float], width: float = 2.0, carried_for: int = 0) -> WireFit:
    """A level wire along row ``ROW`` across the whole frame (``u`` = x - 100), seen over ``seen``;
    ``carried_for`` > 0: its curve carried for that many frames."""
    axes = Axes(np.array([100.0, ROW]), np.array([1.0, 0.0]))
    curve = Curve(axes, np.array([0.0]), -100.0, 100.0, -140.0, 140.0)
    return WireFit(curve, width, 1.0 if carried_for == 0 else 0.1, carried_for > 0, 20.0, seen,
                   carried_for=carried_for)


def _across(mask: np.ndarray, x: int) -> int:
    return int((mask[:, x] > 0).sum())


@pytest.mark.parametrize("grow", [0, 1, 2])
def test_mask_widens_with_the_distance_past_the_seen_span(grow):
    fit = _level_fit((-70.0, 70.0))  # 140 of the 200 px in the frame seen
    mask = render_mask((H, W), [fit], grow)
    base = 2 * half_width(fit.width, grow)
    inside = [_across(mask, x) for x in range(30, 171, 10)]  # u -70..70: the band alone
    assert all(abs(a - base) <= 1.0 for a in inside), inside
    # 20 px past the seen end: 3 px more each side; 60 px past: the cap
    for x, extra in ((100 + 70 + 20, END_SPREAD * 20), (100 - 70 - 20, END_SPREAD * 20), (3, END_SPREAD_MAX)):
        assert abs(_across(mask, x) - (base + 2 * extra)) <= 1.0, (x, _across(mask, x), base + 2 * extra)
    # the band stays centred on the curve
    rows = np.nonzero(mask[:, 3])[0]
    assert abs(rows.mean() - ROW) <= 0.5


def test_mask_keeps_its_width_where_little_of_the_wire_was_seen():
    fit = _level_fit((-40.0, 40.0))  # 80 of 200 px: the whole curve is a guess, widening it adds only area
    mask = render_mask((H, W), [fit], 1)
    base = 2 * half_width(fit.width, 1)
    assert all(abs(_across(mask, x) - base) <= 1.0 for x in range(0, W, 7))


def test_fully_seen_wire_is_not_widened():
    fit = _level_fit((-100.0, 100.0))
    mask = render_mask((H, W), [fit], 1)
    assert max(_across(mask, x) for x in range(W)) <= 2 * half_width(fit.width, 1) + 1.0


@pytest.mark.parametrize("carried_for", [0, 1, 3, 4, 12])
def test_carried_curve_widens_with_the_frames_carried_up_to_the_cap(carried_for):
    fit = _level_fit((-100.0, 100.0), carried_for=carried_for)
    extra = min(CARRY_SPREAD * carried_for, CARRY_SPREAD_MAX)
    assert carry_spread(fit) == pytest.approx(extra)
    mask = render_mask((H, W), [fit], 1)
    want = 2 * (half_width(fit.width, 1) + extra)
    assert all(abs(_across(mask, x) - want) <= 1.0 for x in range(0, W, 9)), [_across(mask, x) for x in range(0, W, 9)]
    rows = np.nonzero(mask[:, W // 2])[0]
    assert abs(rows.mean() - ROW) <= 0.5
