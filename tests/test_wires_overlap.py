"""Two wires on one line are listed for both; crossing or neighbouring wires are not."""

import numpy as np

from propainter_wire.wires.clip import fits_report, low_confidence
from propainter_wire.wires.curve import Axes, fit_curve
from propainter_wire.wires.overlap import mark_shared, share_along
from propainter_wire.wires.track import WireFit

H, W = 360, 640


def _fit(y0: float, y1: float, width: float = 2.0, confidence: float = 1.0) -> WireFit:
    """A straight wire from (0, y0) to (W - 1, y1)."""
    pts = np.array([[0.0, y0], [W / 2, (y0 + y1) / 2], [W - 1.0, y1]])
    axes = Axes.from_points(pts)
    uv = axes.to_uv(pts)
    curve = fit_curve(axes, uv[:, 0], uv[:, 1], np.ones(3), uv[0, 0] - 20, uv[-1, 0] + 20)
    return WireFit(curve, width, confidence, False, 20.0, (uv[0, 0], uv[-1, 0]))


def test_share_along_measures_the_common_stretch():
    assert share_along(_fit(100, 120), _fit(101, 121), (H, W)) == 1.0
    assert share_along(_fit(100, 120), _fit(112, 132), (H, W)) == 0.0  # 12 px apart all along
    crossing = share_along(_fit(100, 120), _fit(160, 60), (H, W))  # crosses in the middle at about 9 degrees
    assert 0.0 < crossing < 0.1


def test_wires_on_one_line_are_listed_for_both():
    one, other, apart = _fit(100, 120), _fit(100.5, 121, width=4.0), _fit(200, 220)
    fits = [[one, one], [other, _fit(150, 60)], [apart, apart]]  # frame 0: wires 0 and 1 on one line
    marked = mark_shared(fits, (H, W))
    assert [f.shared for f in marked[0]] == [True, False]
    assert [f.shared for f in marked[1]] == [True, False]
    assert not any(f.shared for f in marked[2])
    assert low_confidence(marked[0]) == [0] and low_confidence(marked[1]) == [0]
    assert fits_report("w0", marked[0])["shared_line_frames"] == [0]
    assert marked[0][1] is fits[0][1]  # frames not shared are the tracker's own


def test_a_wire_out_of_the_frame_is_not_judged():
    gone = _fit(100, 120, confidence=float("nan"))
    marked = mark_shared([[gone], [_fit(100, 120)]], (H, W))
    assert share_along(_fit(100, 120), gone, (H, W)) == 1.0  # its carried curve lies on the other wire
    assert not marked[0][0].shared and not marked[1][0].shared


def test_one_sided_share_lists_both(monkeypatch):
    from propainter_wire.wires import overlap

    short, long_, third = _fit(100, 120), _fit(100, 120, width=3.0), _fit(250, 260)
    # only the short wire lies along the long one over most of its own length (a wire mostly out of the frame)
    monkeypatch.setattr(overlap, "share_along", lambda a, b, shape: 1.0 if (a is short and b is long_) else 0.0)
    marked = mark_shared([[short], [long_], [third]], (H, W))
    assert [m[0].shared for m in marked] == [True, True, False]
