"""Wire tracking on synthetic swaying wires over a busy panning background."""

import numpy as np
import pytest

from propainter_wire.wires.api import wire_masks_array
from propainter_wire.wires.synthetic import SynthWire, clicks, draw_wires, textured_plate

T, H, W = 20, 120, 200


@pytest.fixture(scope="module")
def plate():
    return textured_plate(T, H, W, seed=3)


def _spec(wires, keys=(0,)):
    return {"wires": [{"keys": [{"frame": k, "points": clicks(w, k, H, W, 8, 2.0, seed=i)} for k in keys]}
                      for i, w in enumerate(wires)]}


def _scores(masks, truth):
    area = truth.sum(axis=(1, 2))
    cover = (masks & truth).sum(axis=(1, 2))[area > 0] / area[area > 0]
    return float(cover.mean()), float(cover.min()), float(masks.sum() / truth.sum())


@pytest.mark.parametrize("thickness, value", [(1.0, 25.0), (5.0, 235.0)])
def test_swaying_wire(plate, thickness, value):
    wire = SynthWire((-10, 40), (210, 52), sag=20, thickness=thickness, value=value, sway=6, period=16)
    clip, truth = draw_wires(plate, [wire])
    masks, fits = wire_masks_array(clip, _spec([wire]))
    mean, worst, excess = _scores(masks, truth)
    # measured: coverage 1.000 / 1.000, excess 3.3 (1 px) and 1.6 (5 px)
    assert mean >= 0.995 and worst >= 0.98
    assert excess <= (3.6 if thickness < 2 else 2.0)
    assert not any(f.carried for f in fits[0])
    assert abs(np.median([f.width for f in fits[0]]) - thickness) < 1.0


def test_wire_leaving_the_frame(plate):
    wire = SynthWire((-10, 30), (210, 24), sag=12, thickness=3.0, value=30.0, sway=2, period=20, drift=(0.0, -3.0))
    clip, truth = draw_wires(plate, [wire])
    masks, fits = wire_masks_array(clip, _spec([wire]))
    mean, worst, _ = _scores(masks, truth)
    assert mean >= 0.99 and worst >= 0.95  # measured 1.000 / 1.000
    assert any(not truth[t].any() for t in range(T))  # it does leave


def test_two_crossing_wires(plate):
    a = SynthWire((-10, 20), (210, 100), sag=10, thickness=2.0, value=30.0, sway=3, period=18)
    b = SynthWire((-10, 100), (210, 20), sag=10, thickness=3.0, value=220.0, sway=4, period=22, phase=1.0)
    clip, truth = draw_wires(plate, [a, b])
    masks, _ = wire_masks_array(clip, _spec([a, b]))
    mean, worst, excess = _scores(masks, truth)
    assert mean >= 0.995 and worst >= 0.98 and excess <= 3.0  # measured 1.000 / 1.000 / 2.4


def test_fading_wire_is_reported(plate):
    fade = ((0, 1.0), (7, 1.0), (8, 0.0), (12, 0.0), (13, 1.0), (19, 1.0))
    wire = SynthWire((-10, 50), (210, 60), sag=15, thickness=3.0, value=30.0, sway=2, period=30, fade=fade)
    clip, truth = draw_wires(plate, [wire])
    masks, fits = wire_masks_array(clip, _spec([wire]))
    low = [t for t, f in enumerate(fits[0]) if f.carried]
    assert set(range(9, 12)) <= set(low) and set(low) <= set(range(7, 14))
    mean, worst, _ = _scores(masks, truth)
    assert mean >= 0.99


def test_two_keyframes_blend(plate):
    wire = SynthWire((-10, 50), (210, 40), sag=18, thickness=2.0, value=30.0, sway=5, period=25)
    clip, truth = draw_wires(plate, [wire])
    masks, fits = wire_masks_array(clip, _spec([wire], keys=(0, T - 1)))
    mean, worst, _ = _scores(masks, truth)
    assert mean >= 0.995 and worst >= 0.98
