"""A wire's own grey: the polarity it shows along its length, and lines darker (brighter) than it that the
tracker must not take for it."""

import numpy as np
import pytest

from propainter_wire.wires import appearance
from propainter_wire.wires.api import wire_masks_array
from propainter_wire.wires.ridge import BRIGHT, DARK, sample_strip
from propainter_wire.wires.synthetic import SynthWire, clicks, coverage, draw_wires, textured_plate
from propainter_wire.wires.track import TrackSettings

H, W, CENTRE = 64, 200, 13  # strips 27 columns wide, the wire at column 13


def _strip(lines, background: float) -> np.ndarray:
    """A strip across horizontal anti-aliased lines ``(width, grey, offset px)`` drawn in order over a flat grey."""
    image = np.full((H, W), background, np.float32)
    for width, grey, offset in lines:
        y = 32.3 + offset
        c = coverage(H, W, np.array([[-10.0, y], [W + 10.0, y]]), width)
        image = image * (1.0 - c) + grey * c
    u = np.arange(20.0, 180.0, 4.0)
    centres = np.stack([u, np.full_like(u, 32.0)], axis=1)
    normals = np.tile([0.0, 1.0], (len(u), 1))
    return sample_strip(image.astype(np.float32), centres, normals, np.arange(-CENTRE, CENTRE + 1, dtype=np.float64))


def _look(strip, polarity, width):
    col = np.full(len(strip), CENTRE + 0.3)
    return appearance.measure(strip, col, np.ones(len(strip), bool), polarity, width, 0.25, 8.0)


def _track(plate: np.ndarray, wire: SynthWire, settings: TrackSettings, x_range: tuple[float, float]):
    """Track ``wire`` drawn over ``plate`` from frame 0's clicks: the largest error of the fitted curve
    (px, across it) over ``x_range`` of the image, and the mean and worst frame's coverage."""
    t_len, h, w = plate.shape[:3]
    clip, truth = draw_wires(plate, [wire])
    spec = {"wires": [{"keys": [{"frame": 0, "points": clicks(wire, 0, h, w, 8, 2.0, seed=0)}]}]}
    masks, fits = wire_masks_array(clip, spec, settings=settings)
    errors = []
    for t, fit in enumerate(fits[0]):
        p = wire.points(t, 256)
        uv = fit.curve.axes.to_uv(p[(p[:, 0] > x_range[0]) & (p[:, 0] < x_range[1])])
        errors.append(float(np.max(np.abs(fit.curve.v(uv[:, 0]) - uv[:, 1]))))
    cover = (masks & truth).sum(axis=(1, 2)) / truth.sum(axis=(1, 2))
    return max(errors), float(cover.mean()), float(cover.min())


@pytest.mark.parametrize("width", [1.0, 3.0, 6.0])
@pytest.mark.parametrize("grey, background, polarity", [(40.0, 150.0, DARK), (220.0, 90.0, BRIGHT)])
def test_measured_grey_is_the_wire_s_own(width, grey, background, polarity):
    look = _look(_strip([(width, grey, 0.0)], background), polarity, width)
    # measured: 40.1 / 219.8 at 1 px, exact from 3 px; the tolerance is a quarter of the contrast
    assert abs(look.value - grey) < 2.0
    assert look.tolerance == pytest.approx(0.25 * appearance.core_share(width) * abs(background - grey), rel=0.1)


def test_a_thin_wire_s_grey_errs_towards_the_extreme():
    """A 1.5-px wire fully covering a pixel shows its whole contrast, read as a 0.875 share: the grey is
    taken darker than it is, so fewer lines count as darker than the wire (the safe side)."""
    look = _look(_strip([(1.5, 40.0, 0.0)], 150.0), DARK, 1.5)
    assert 15.0 < look.value <= 40.0  # measured 24.3


def test_too_few_stations_give_no_appearance():
    strip = _strip([(3.0, 40.0, 0.0)], 150.0)
    assert appearance.measure(strip, np.full(len(strip), 13.0), np.zeros(len(strip), bool), DARK, 3.0,
                              0.25, 8.0) is None


def test_a_darker_line_is_unlike_the_wire_and_the_wire_itself_is_not():
    look = appearance.Appearance(value=60.0, tolerance=15.0)
    col = np.full(len(_strip([], 0.0)), CENTRE + 0.3)
    stripe = _strip([(2.0, 15.0, 0.0)], 60.0)  # darker than the wire, over a surface of its grey
    assert appearance.unlike(stripe, col, DARK, look).all()
    for background in (60.0, 90.0, 200.0):  # over its grey or paler: its core is its grey or paler
        for width in (1.0, 3.0):
            wire = _strip([(width, 60.0, 0.0)], background)
            assert not appearance.unlike(wire, col, DARK, look).any()
    # a bright wire: a brighter line is unlike it, a darker one is not judged
    bright = appearance.Appearance(value=200.0, tolerance=15.0)
    assert appearance.unlike(_strip([(2.0, 250.0, 0.0)], 200.0), col, BRIGHT, bright).all()
    assert not appearance.unlike(_strip([(2.0, 100.0, 0.0)], 200.0), col, BRIGHT, bright).any()


def test_unlike_columns_reach_past_the_foreign_core():
    look = appearance.Appearance(value=60.0, tolerance=15.0)
    strip = _strip([(2.0, 15.0, 0.0)], 60.0)
    foreign = appearance.unlike_columns(strip, DARK, look).all(axis=0)
    near = np.flatnonzero(foreign)
    # the stripe covers rows 32-33 of the image (columns 13-14 of the strip): its core +-1 px, plus REACH
    assert near.min() <= CENTRE - appearance.REACH and near.max() >= CENTRE + 1 + appearance.REACH
    assert near.max() - near.min() <= 2 + 2 + 2 * appearance.REACH
    assert not appearance.unlike_columns(strip, DARK, look, reach=0)[:, [0, 5, 20, 26]].any()


def test_tracker_does_not_follow_a_darker_stripe_where_the_wire_vanishes():
    """The right third of the frame is a surface of the wire's own grey (60) with a darker stripe (15)
    sliding down it 2-12 px below the wire: the wire is invisible there. Without the check the curve's
    end settled on the stripe, up to 25 px off at confidence 1 (never reported); with it the end moves
    with the rest of the wire (9 px at most at the swing's peak, where an invisible end can only be
    guessed; 6 px with no stripe at all)."""
    t_len = 20
    plate = textured_plate(t_len, 120, 200, seed=3).copy()
    for t in range(t_len):
        plate[t, 20:110, 135:] = 60
        y = int(round(62 + 0.5 * t))
        plate[t, y:y + 2, 135:] = 15
    wire = SynthWire((-10, 50), (210, 60), sag=15, thickness=3.0, value=60.0, sway=5, period=16)
    off_error, off_coverage, _ = _track(plate, wire, TrackSettings(opaque_check=False), (140, 195))
    on_error, on_coverage, _ = _track(plate, wire, TrackSettings(), (140, 195))
    assert off_error > 20.0 and off_coverage < 0.9  # measured 25.1 px, 85.3 %
    assert on_error < 12.0 and on_coverage > 0.97  # measured 9.1 px, 98.6 %


def test_shown_polarity_turns_where_the_background_is_beyond_the_wire_s_grey():
    look = appearance.Appearance(value=70.0, tolerance=15.0)
    over_light = _strip([(2.0, 70.0, 0.0)], 150.0)
    over_dark = _strip([(2.0, 70.0, 0.0)], 20.0)
    over_its_grey = _strip([(2.0, 70.0, 0.0)], 60.0)  # within the tolerance: keeps the keyframe's polarity
    strip = np.concatenate([over_light, over_dark, over_its_grey])
    shown = appearance.shown_polarity(strip, DARK, look)
    n = len(over_light)
    assert (shown[:n] == DARK).all() and (shown[n:2 * n] == BRIGHT).all() and (shown[2 * n:] == DARK).all()
    assert (appearance.shown_polarity(strip, DARK, None) == DARK).all()
    # each row answers for the polarity it shows: the wire is a positive response on both stretches
    response = appearance.line_response(strip, shown, (0.8, 1.4))
    inner = np.r_[2:n - 2, n + 2:2 * n - 2]  # rows away from the seams (the filter smooths along the rows)
    assert (response[inner, CENTRE] > 10.0).all()  # measured 31 and 19 grey levels
    # and its core is judged the other way round where it shows bright: not brighter than the wire
    col = np.full(len(strip), CENTRE + 0.3)
    assert not appearance.unlike(strip, col, shown, look)[:2 * n].any()
    brighter = _strip([(2.0, 160.0, 0.0)], 20.0)  # a line brighter than the wire over the dark stretch
    assert appearance.unlike(brighter, col[:n], np.full(n, BRIGHT), look).all()


def test_tracker_follows_a_wire_across_a_background_darker_than_itself():
    """A grey wire (70) is darker than the plate on the left and lighter than it on the right, where the
    plate is darkened to a quarter: a dark line there is not the wire. With one polarity the right part
    was carried along with the left, up to 5.8 px off (coverage 93.9 % mean, 85.0 % worst frame); with the
    polarity each stretch shows it is followed within 0.8 px (100 %)."""
    plate = textured_plate(20, 120, 200, seed=3).astype(np.float32)
    plate[:, :, 120:] *= 0.25
    plate = np.clip(plate, 0, 255).astype(np.uint8)
    wire = SynthWire((-10, 50), (210, 60), sag=15, thickness=2.0, value=70.0, sway=8, period=14)
    one_error, _, one_worst = _track(plate, wire, TrackSettings(opaque_check=False), (130, 195))
    error, _, worst = _track(plate, wire, TrackSettings(), (130, 195))
    assert one_error > 4.0 and one_worst < 0.9  # measured 5.8 px, 85.0 %
    assert error < 1.5 and worst > 0.99  # measured 0.8 px, 100 %
