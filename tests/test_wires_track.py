"""Wire tracking on synthetic swaying wires over a busy panning background."""

import numpy as np
import pytest

from propainter_wire.wires.api import wire_masks_array
from propainter_wire.wires.synthetic import SynthWire, clicks, draw_wires, textured_plate
from propainter_wire.wires.track import TrackSettings

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
    # each carried frame counts the frames carried in a row (its mask widens with them); found ones count 0
    run = 0
    for f in fits[0]:
        run = run + 1 if f.carried else 0
        assert f.carried_for == run
    mean, worst, _ = _scores(masks, truth)
    assert mean >= 0.99


def test_two_keyframes_blend(plate):
    wire = SynthWire((-10, 50), (210, 40), sag=18, thickness=2.0, value=30.0, sway=5, period=25)
    clip, truth = draw_wires(plate, [wire])
    masks, fits = wire_masks_array(clip, _spec([wire], keys=(0, T - 1)))
    mean, worst, _ = _scores(masks, truth)
    assert mean >= 0.995 and worst >= 0.98


@pytest.mark.parametrize("thickness, value", [(1.0, 25.0), (3.0, 230.0)])
def test_keyframe_clicked_loosely_is_found_again_from_the_next_frame(plate, thickness, value):
    """Clicks up to 5 px off the wire: the keyframe is found again by the per-frame search from the
    frame after it. Measured: keyframe coverage 1.000 (0.793 and 0.858 when the first fit is kept)."""
    wire = SynthWire((-10, 40), (210, 52), sag=20, thickness=thickness, value=value, sway=6, period=16)
    clip, truth = draw_wires(plate, [wire])
    spec = {"wires": [{"keys": [{"frame": 0, "points": clicks(wire, 0, H, W, 8, 5.0, seed=1)}]}]}
    kept, _ = wire_masks_array(clip, spec, settings=TrackSettings(revisit_key=False))
    masks, fits = wire_masks_array(clip, spec)
    key = (masks[0] & truth[0]).sum() / truth[0].sum()
    assert key >= 0.99 > (kept[0] & truth[0]).sum() / truth[0].sum()
    mean, worst, _ = _scores(masks, truth)
    assert mean >= 0.995 and worst >= 0.98
    assert fits[0][0].confidence == 1.0 and not fits[0][0].carried


@pytest.mark.parametrize("gap", [4, 5])
def test_polarity_is_judged_near_the_clicks(plate, gap):
    """A dark 1.5-px wire clicked with a bright 4-px wire running ``gap`` px beside it: the bright
    one answered more strongly within the keyframe's search and was taken (coverage 0.03-0.35)."""
    dark = SynthWire((-10, 50), (210, 60), sag=15, thickness=1.5, value=30.0, sway=2, period=30)
    bright = SynthWire((-10, 50 + gap), (210, 60 + gap), sag=15, thickness=4.0, value=235.0, sway=2, period=30)
    clip, _ = draw_wires(plate, [dark, bright])
    _, truth = draw_wires(plate, [dark])
    masks, _ = wire_masks_array(clip, _spec([dark]))
    mean, worst, _ = _scores(masks, truth)
    assert mean >= 0.995 and worst >= 0.98  # measured 1.000 / 1.000
    unweighted, _ = wire_masks_array(clip, _spec([dark]), settings=TrackSettings(polarity_sigma=1e9))
    assert _scores(unweighted, truth)[0] < 0.5


def test_doubtful_jump_to_a_weaker_line_is_not_taken(plate):
    """The wire vanishes at frame 10 while a weaker line of its polarity appears 10 px below it: the
    doubtful jump onto it (measured 10 px off for good) is refused and the curve carried, reported."""
    fade = ((0, 1.0), (9, 1.0), (10, 0.0), (T - 1, 0.0))
    wire = SynthWire((-10, 50), (210, 60), sag=15, thickness=3.0, value=30.0, sway=2, period=30, fade=fade)
    lure = SynthWire((-10, 60), (210, 70), sag=15, thickness=3.0, value=90.0, sway=2, period=30,
                     fade=((0, 0.0), (9, 0.0), (10, 1.0), (T - 1, 1.0)))
    clip, _ = draw_wires(plate, [wire, lure])

    def errors(settings):
        _, fits = wire_masks_array(clip, _spec([wire]), settings=settings)
        out = []
        for t, fit in enumerate(fits[0]):
            uv = fit.curve.axes.to_uv(wire.points(t, 64)[8:-8])
            out.append(float(np.median(np.abs(fit.curve.v(uv[:, 0]) - uv[:, 1]))))
        return np.array(out), fits[0]

    taken, _ = errors(TrackSettings(doubt_jump=0.0))
    carried, fits = errors(TrackSettings())
    assert taken[12:].min() > 8.0  # measured 9.9-11.0 px
    assert carried.max() < 3.0  # measured 2.2 px after 9 frames carried
    assert all(f.carried for f in fits[10:])
    # a refused jump is reported as not found: a carried frame never outweighs a tracked one when two
    # keyframes' tracks are blended (``clip.blend_fits`` weighs by confidence)
    assert all(f.confidence < TrackSettings().min_confidence for f in fits[10:])
