"""PSNR, SSIM and warping error: known values and sanity properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from propainter_wire.quality.metrics import TemporalFlow, mse, psnr, ssim, ssim_map, temporal_flow, warping_error
from propainter_wire.quality.synth import render_canvas


def _image(seed: int = 0, h: int = 48, w: int = 64) -> np.ndarray:
    return (render_canvas(h, w, seed=seed) * 255).astype(np.uint8)


def test_psnr_identical_is_inf():
    img = _image()
    assert psnr(img, img) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-9)


def test_psnr_known_value_uint8_and_float():
    a = np.zeros((10, 10, 3), np.uint8)
    b = np.full((10, 10, 3), 10, np.uint8)
    # MSE = 100 grey levels^2 -> 10 log10(255^2 / 100)
    expected = 10 * math.log10(255.0**2 / 100.0)
    assert psnr(a, b) == pytest.approx(expected, abs=1e-9)
    assert psnr(a.astype(np.float32) / 255, b.astype(np.float32) / 255) == pytest.approx(expected, abs=1e-4)
    assert mse(a, b) == pytest.approx(100.0 / 255.0**2)


def test_psnr_mask_counts_only_masked_pixels():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    b = a.copy()
    b[:, :4] = 20  # error only in the top half
    top = np.zeros((8, 8), bool)
    top[:4] = True
    assert psnr(a, b, mask=~top) == math.inf
    assert psnr(a, b, mask=top) == pytest.approx(10 * math.log10(255.0**2 / 400.0))
    # whole frame: half the pixels carry the error
    assert psnr(a, b) == pytest.approx(10 * math.log10(255.0**2 / 200.0))
    assert math.isnan(psnr(a, b, mask=np.zeros((8, 8), bool)))


def test_ssim_properties():
    img = _image(1)
    rng = np.random.default_rng(0)
    noisy = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    s1, s2 = ssim(img, noisy), ssim(img, noisier)
    assert 0 < s2 < s1 < 1
    assert ssim(img, noisy) == pytest.approx(ssim(noisy, img))  # symmetric
    # mask selects the map's pixels
    maps = ssim_map(img, noisy)
    mask = np.zeros(img.shape[:2], bool)
    mask[10:20, 5:40] = True
    assert ssim(img, noisy, mask=mask) == pytest.approx(maps[0][mask].mean())
    # flat images: only the luminance term is left, (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    flat = np.full((16, 16), 100, np.uint8)
    m1, m2, c1 = 100 / 255, 150 / 255, 0.01**2
    assert ssim(flat, flat + 50) == pytest.approx((2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1), rel=1e-6)


def _translation_clip(t_len=4, h=40, w=56, step=2):
    big = _image(2, h, w + step * t_len)
    frames = np.stack([big[:, i * step:i * step + w] for i in range(t_len)])
    return frames


def test_warping_error_zero_for_exact_translation():
    frames = _translation_clip()
    # frame t+1 = canvas shifted left by `step`: content at x in frame t sits at x - step in t+1
    flow = np.zeros((frames.shape[0] - 1, *frames.shape[1:3], 2), np.float32)
    flow[..., 0] = -2.0
    assert warping_error(frames, flow) == pytest.approx(0.0, abs=0.05)
    # a result that flickers scores worse
    flicker = frames.copy()
    flicker[1::2] = np.clip(flicker[1::2].astype(int) + 15, 0, 255).astype(np.uint8)
    assert warping_error(flicker, flow) > 10
    # the wrong flow scores worse too
    assert warping_error(frames, np.zeros_like(flow)) > 1.0


def test_temporal_flow_finds_the_translation():
    frames = _translation_clip(t_len=3, h=64, w=96)
    flows = temporal_flow(frames)
    assert isinstance(flows, TemporalFlow)
    assert flows.forward.shape == (2, 64, 96, 2) and flows.valid.shape == (2, 64, 96)
    inner = flows.forward[:, 8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(-2.0, abs=0.2)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.2)
    assert flows.valid.mean() > 0.5
    err = warping_error(frames, flows)
    assert err < 3.0
    mask = np.zeros(frames.shape[:3], bool)
    mask[:, 20:30, 30:50] = True
    assert warping_error(frames, flows, mask=mask) < 3.0
