"""Line filters find thin dark and bright lines 1-6 px wide and measure their width."""

import numpy as np
import pytest

from propainter_wire.wires.ridge import (
    BRIGHT,
    DARK,
    SIGMAS,
    profile_widths,
    ridge_map,
    sample_strip,
    scales_for,
    strip_response,
    strip_response_forms,
    strip_responses,
)
from propainter_wire.wires.synthetic import coverage


def _line_image(width_px: float, value: float, rng) -> np.ndarray:
    h, w = 64, 96
    plate = 128.0 + rng.normal(0, 4, (h, w))
    pts = np.array([[-5.0, 20.0], [100.0, 44.0]])  # slanted line
    alpha = coverage(h, w, pts, width_px)
    return (plate + alpha * (value - plate)).astype(np.float32), pts


@pytest.mark.parametrize("width_px", [1.0, 6.0])
@pytest.mark.parametrize("value, polarity", [(40.0, DARK), (220.0, BRIGHT)])
def test_ridge_map_finds_line(width_px, value, polarity):
    grey, pts = _line_image(width_px, value, np.random.default_rng(0))
    response = ridge_map(grey, polarity)
    for x in (20, 48, 70):  # the strongest response of the column lies on the line
        y_true = pts[0, 1] + (x - pts[0, 0]) * (pts[1, 1] - pts[0, 1]) / (pts[1, 0] - pts[0, 0])
        assert abs(int(np.argmax(response[:, x])) - y_true) <= 1.5
    assert ridge_map(grey, -polarity)[int(pts[0, 1] + 10), 48] < response.max() * 0.5


@pytest.mark.parametrize("width_px", [1.0, 3.0, 6.0])
@pytest.mark.parametrize("value, polarity", [(40.0, DARK), (220.0, BRIGHT)])
def test_strip_peak_and_width(width_px, value, polarity):
    grey, pts = _line_image(width_px, value, np.random.default_rng(1))
    direction = (pts[1] - pts[0]) / np.linalg.norm(pts[1] - pts[0])
    normal = np.array([-direction[1], direction[0]])
    s = np.linspace(15, 85, 20)
    centres = pts[0] + s[:, None] * direction + 3.0 * normal  # prediction 3 px off the line
    offsets = np.arange(-20, 21, dtype=np.float64)
    strip = sample_strip(grey, centres, np.tile(normal, (20, 1)), offsets)
    response, _ = strip_response(strip, polarity)
    col = np.argmax(response[:, 10:31], axis=1) + 10
    assert np.all(np.abs(offsets[col] + 3.0) <= 1.0)
    width = np.median(profile_widths(strip, col.astype(float), polarity))
    assert abs(width - width_px) <= 0.6


def test_scales_for_keeps_one_scale_above_the_wire():
    assert scales_for(1.0) == SIGMAS[:2]
    assert scales_for(3.0) == SIGMAS[:3]
    assert scales_for(6.0) == SIGMAS
    assert scales_for(1.0, above=0) == SIGMAS[:1]
    assert scales_for(float("nan")) == SIGMAS


@pytest.mark.parametrize("symmetric", [True, False])
def test_both_polarities_from_one_filtering_equal_each_alone(symmetric):
    rng = np.random.default_rng(5)
    strip = rng.uniform(0, 255, (40, 33)).astype(np.float32)
    dark, bright = strip_responses(strip, SIGMAS[:3], symmetric=symmetric)
    assert np.array_equal(dark, strip_response(strip, DARK, SIGMAS[:3], symmetric=symmetric)[0])
    assert np.array_equal(bright, strip_response(strip, BRIGHT, SIGMAS[:3], symmetric=symmetric)[0])


def test_symmetric_and_plain_forms_from_one_filtering_equal_each_alone():
    rng = np.random.default_rng(6)
    strip = rng.uniform(0, 255, (40, 33)).astype(np.float32)
    forms = strip_response_forms(strip, (DARK, BRIGHT), SIGMAS[:3])
    for polarity, (sym, plain) in zip((DARK, BRIGHT), forms, strict=True):
        assert np.array_equal(sym, strip_response(strip, polarity, SIGMAS[:3], symmetric=True)[0])
        assert np.array_equal(plain, strip_response(strip, polarity, SIGMAS[:3], symmetric=False)[0])
