"""The share of a wire each frame saw, and the frames listed for seeing too little of it."""

from dataclasses import replace

import numpy as np

from propainter_wire.wires.clip import fits_report, low_confidence
from propainter_wire.wires.curve import Axes, Curve
from propainter_wire.wires.seen import SEEN_ENOUGH, mark_partly_seen, seen_share
from propainter_wire.wires.track import WireFit

H, W = 120, 200


def _level_fit(seen: tuple[float, float], row: float = 60.0) -> WireFit:
    """A level wire along ``row`` across the frame (``u`` = x - 100), seen over ``seen``."""
    curve = Curve(Axes(np.array([100.0, row]), np.array([1.0, 0.0])), np.array([0.0]), -100.0, 100.0, -140.0, 140.0)
    return WireFit(curve, 2.0, 1.0, False, 20.0, seen)


def test_seen_share_is_the_seen_part_of_the_curve_in_the_frame():
    assert abs(seen_share(_level_fit((-70.0, 70.0)), (H, W)) - 140 / 198) < 0.02
    assert seen_share(_level_fit((-300.0, 300.0)), (H, W)) == 1.0  # seen past the edges: all of it
    assert np.isnan(seen_share(_level_fit((-70.0, 70.0), row=-50.0), (H, W)))  # out of the frame


def test_frames_that_saw_too_little_are_listed():
    little, enough = _level_fit((-40.0, 40.0)), _level_fit((-70.0, 70.0))
    assert seen_share(little, (H, W)) < SEEN_ENOUGH <= seen_share(enough, (H, W))
    carried = replace(little, carried=True, confidence=0.2)
    gone = replace(little, confidence=float("nan"))
    marked = mark_partly_seen([[enough, little, carried, gone]], (H, W))[0]
    assert [f.partly_seen for f in marked] == [False, True, False, False]
    assert low_confidence(marked) == [1, 2]  # the carried frame is listed as carried
    assert fits_report("w", marked)["partly_seen_frames"] == [1]
