"""Regrain: strength and size estimates, matching residual inside the fill, fresh grain, outside untouched."""

from __future__ import annotations

import numpy as np
import pytest

from propainter_wire.delivery.grain import (
    estimate_grain,
    from_unit,
    grain_field,
    grain_rng,
    has_grain,
    highpass,
    regrain,
    to_unit,
)

H, W = 160, 224


def _robust(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _plate() -> np.ndarray:
    """(H, W, 3) float32 smooth plate: gradients, unit range."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return np.stack([0.2 + 0.6 * xx / W, 0.3 + 0.4 * yy / H, 0.5 + 0.2 * np.sin(xx / 40)], axis=-1)


def _mask() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[50:110, 60:170] = True
    return mask


def _grainy(std, size, seed, dtype=np.uint8):
    plate = _plate() + std * grain_field(H, W, size, np.random.default_rng(seed))
    return from_unit(plate, dtype) if dtype != np.float32 else plate.astype(np.float32)


@pytest.mark.parametrize("std, size", [(0.02, 0.0), (0.02, 0.8), (0.03, 1.5)])
def test_estimate_recovers_strength_and_size(std, size):
    model = estimate_grain(_grainy(std, size, 1), _mask())
    assert np.median(model.grain_std()) == pytest.approx(std, rel=0.1)
    assert model.size == pytest.approx(size, abs=0.2)
    assert has_grain(model)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_regrain_matches_plate_and_keeps_outside(dtype):
    mask = _mask()
    plate = _grainy(0.02, 0.8, 2, dtype)
    filled = plate.copy()
    filled[mask] = from_unit(_plate(), dtype)[mask]  # a smooth, grain-free fill
    out = regrain(filled, plate, mask, rng=grain_rng(7, 0))
    assert out.dtype == plate.dtype and out.shape == plate.shape
    assert np.array_equal(out[~mask], filled[~mask])
    interior = np.zeros_like(mask)
    interior[56:104, 66:164] = True
    around = ~np.pad(np.ones((72, 122), bool), ((44, H - 116), (54, W - 176)))
    inside_std = _robust(highpass(to_unit(out))[interior])
    plate_std = _robust(highpass(to_unit(plate))[around])
    assert inside_std == pytest.approx(plate_std, rel=0.1)


def test_grain_is_new_every_frame_and_repeatable():
    mask = _mask()
    plate = _grainy(0.02, 0.8, 3)
    filled = plate.copy()
    filled[mask] = from_unit(_plate(), np.uint8)[mask]
    model = estimate_grain(plate, mask)
    added = [regrain(filled, plate, mask, model, grain_rng(5, i)).astype(np.float32) - filled for i in range(3)]
    corr = np.corrcoef(added[0][mask].ravel(), added[1][mask].ravel())[0, 1]
    assert abs(corr) < 0.05
    again = regrain(filled, plate, mask, model, grain_rng(5, 0)).astype(np.float32) - filled
    assert np.array_equal(again, added[0])


def test_fill_already_grainy_gets_little_more():
    """An engine fill that copied grainy pixels is topped up, not doubled."""
    mask = _mask()
    plate = _grainy(0.02, 0.8, 4)
    filled = plate.copy()
    filled[mask] = _grainy(0.02, 0.8, 5)[mask]
    out = regrain(filled, plate, mask, rng=grain_rng(0, 0))
    interior = np.zeros_like(mask)
    interior[56:104, 66:164] = True
    ratio = _robust(highpass(to_unit(out))[interior]) / _robust(highpass(to_unit(plate))[interior])
    assert ratio == pytest.approx(1.0, rel=0.1)


def test_auto_rule_clean_vs_grainy():
    clean8 = from_unit(_plate(), np.uint8)
    assert not has_grain(estimate_grain(clean8, _mask()))
    assert not has_grain(estimate_grain(_plate(), _mask()))
    assert has_grain(estimate_grain(_grainy(1.5 / 255, 0.6, 6), _mask()))


def test_empty_mask_and_alpha_untouched():
    plate = _grainy(0.02, 0.8, 8)
    assert np.array_equal(regrain(plate, plate, np.zeros((H, W), bool)), plate)
    rgba = np.concatenate([plate, np.full((H, W, 1), 200, np.uint8)], axis=2)
    filled = rgba.copy()
    filled[_mask(), :3] = from_unit(_plate(), np.uint8)[_mask()]
    out = regrain(filled, rgba, _mask(), rng=grain_rng(0, 1))
    assert np.array_equal(out[..., 3], rgba[..., 3]) and not np.array_equal(out[..., :3], filled[..., :3])


def test_flat_frame_has_no_grain_model():
    model = estimate_grain(np.full((H, W, 3), 128, np.uint8), _mask())
    assert model.strength == 0 and not has_grain(model)
