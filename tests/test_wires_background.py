"""Lines that move with the background: its motion beside a wire, and the veto of such lines."""

import numpy as np

from propainter_wire.wires.background import Veto, make_veto, normal_shift, to_uint8
from propainter_wire.wires.curve import Axes, fit_curve
from propainter_wire.wires.synthetic import textured_plate

H, W = 120, 200


def _line(y: float):
    axes = Axes(np.array([100.0, y]), np.array([1.0, 0.0]))
    u = np.linspace(-100, 100, 21)
    return fit_curve(axes, u, np.zeros_like(u), np.ones_like(u), -100, 100), np.arange(-90.0, 91.0, 4.0)


def test_normal_shift_measures_the_background_pan():
    plate = textured_plate(2, H, W, seed=3, pan=(1.0, 2.0))  # the picture moves 1 px left and 2 px up a frame
    grey = [to_uint8(f.astype(np.float32).mean(axis=-1)) for f in plate]
    curve, u = _line(60.0)  # its normal points down (+y)
    shift = normal_shift(grey[0], grey[1], curve, u, 9.0)
    assert np.isfinite(shift).mean() > 0.5
    assert abs(np.nanmedian(shift) + 2.0) < 0.3  # along the normal only: the horizontal pan is not in it


def test_veto_zeroes_the_background_line_only():
    response = np.ones((3, 21))
    veto = Veto(np.array([0.0, 4.0, 8.0]), np.array([3.0, np.nan, -2.0]), 1.5)
    out = veto.apply(response, np.array([0.0, 4.0, 8.0]), np.zeros(3), 10)
    assert np.flatnonzero(out[0] == 0).tolist() == [12, 13, 14]  # v = 3 at column 13, +-1.5
    assert out[1].all()  # no veto at that station
    assert np.flatnonzero(out[2] == 0).tolist() == [7, 8, 9]


def test_veto_only_where_the_wire_moved_across_the_background():
    u = np.arange(6, dtype=float)
    bg = np.full(6, 0.5)  # the background moves 0.5 px this frame
    own = np.array([-3.0, -3.0, -3.0, 0.4, 0.6, -3.0])  # the wire's last motion: drifting, or with the background
    bg_last = np.array([0.5, 0.5, 0.5, 0.5, 0.5, np.nan])
    veto = make_veto(u, np.full(6, 10.0), bg, own, bg_last, 2.0, 1.5)
    assert np.isfinite(veto.v).tolist() == [True, True, True, False, False, False]
    assert np.allclose(veto.v[:3], 10.5)
    assert make_veto(u, np.zeros(6), bg, np.full(6, 0.5), bg_last, 2.0, 1.5) is None

