"""Measured width, mask band, step edges, wires leaving the frame, and the default margin."""

import numpy as np
import pytest

from propainter_wire.wires.api import WIRE_GROW, wire_masks_array
from propainter_wire.wires.render import half_width
from propainter_wire.wires.ridge import DARK, strip_response
from propainter_wire.wires.synthetic import SynthWire, clicks, draw_wires, textured_plate

T, H, W = 8, 120, 200


@pytest.fixture(scope="module")
def plate():
    return textured_plate(T, H, W, seed=5)


def _spec(wires, keys=(0,)):
    return {"wires": [{"keys": [{"frame": k, "points": clicks(w, k, H, W, 8, 2.0, seed=i)} for k in keys]}
                      for i, w in enumerate(wires)]}


@pytest.mark.parametrize("thickness", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
def test_width_is_measured_from_the_image(plate, thickness):
    wire = SynthWire((-10, 50), (210, 62), sag=14, thickness=thickness, value=25.0, sway=3, period=16)
    clip, truth = draw_wires(plate, [wire])
    masks, fits = wire_masks_array(clip, _spec([wire]))
    widths = np.array([f.width for f in fits[0]])
    assert np.all(np.abs(widths - thickness) <= 1.0), widths
    # the default margin covers the wire, and the band follows the measured width
    area = truth.sum(axis=(1, 2))
    assert ((masks & truth).sum(axis=(1, 2)) / area).min() >= 0.99
    assert masks.sum() / truth.sum() <= 3.0


def test_band_width_follows_width_and_grow(plate):
    wire = SynthWire((-10, 60), (210, 60), sag=0.0, thickness=4.0, value=25.0, sway=0.0)
    clip, _ = draw_wires(plate[:2], [wire])
    for grow in (0, 1, 3):
        masks, fits = wire_masks_array(clip, _spec([wire]), grow=grow)
        across = masks[0, :, 100].sum()  # a horizontal wire: one column crosses the band
        assert abs(across - 2 * half_width(fits[0][0].width, grow)) <= 1.0


def test_step_edge_is_not_a_line():
    strip = np.full((12, 41), 200.0, np.float32)
    strip[:, 20:] = 40.0  # bright | dark step at column 20
    step, _ = strip_response(strip, DARK)
    plain, _ = strip_response(strip, DARK, symmetric=False)
    assert plain.max() > 10 and step.max() < 0.05 * plain.max()
    bar = np.full((12, 41), 200.0, np.float32)
    bar[:, 19:22] = 40.0
    assert strip_response(bar, DARK)[0][:, 20].min() > 0.9 * strip_response(bar, DARK, symmetric=False)[0][:, 20].min()


def test_wire_leaving_the_frame_is_kept(plate):
    wire = SynthWire((-10, 16), (210, 12), sag=6, thickness=2.0, value=30.0, sway=1, period=20, drift=(0.0, -6.0))
    clip, truth = draw_wires(plate, [wire])
    masks, fits = wire_masks_array(clip, _spec([wire]))
    gone = [t for t in range(T) if not truth[t].any()]
    assert gone, "the wire should leave the frame"
    for t in gone:  # gone: the curve carried on its damped motion is kept (and reported), never dropped
        assert fits[0][t].carried and np.isfinite(fits[0][t].curve.coef).all()
    area = truth.sum(axis=(1, 2))
    seen = area > 0
    assert ((masks & truth).sum(axis=(1, 2))[seen] / area[seen]).min() >= 0.97


def test_cli_default_grow_is_the_api_default():
    import argparse

    from propainter_wire.wires.cli import add_mask_arguments

    p = add_mask_arguments(argparse.ArgumentParser())
    args = p.parse_args(["wire", "-i", "x", "-o", "y", "--points", "p.json"])
    assert args.grow == WIRE_GROW
    assert p.parse_args(["track", "-i", "x", "-o", "y", "-k", "k"]).grow == 2
