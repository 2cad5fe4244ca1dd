"""Regrain through the real ``inpaint`` run, on generated grainy and clean clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from propainter_wire.cli import main
from propainter_wire.delivery.grain import from_unit, grain_field, highpass, to_unit

cv2 = pytest.importorskip("cv2")
T, H, W = 8, 180, 320
GRAIN_STD, GRAIN_SIZE = 0.02, 0.8


def _robust(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _write_clip(folder, grain: bool):
    """A smooth moving gradient (+ fresh grain of known std and size per frame) and a vertical band mask."""
    (folder / "frames").mkdir(parents=True)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    clip = []
    for t in range(T):
        base = np.stack([0.3 + 0.4 * xx / W, 0.35 + 0.3 * yy / H, 0.5 + 0.15 * np.sin((xx + 3 * t) / 40)], axis=-1)
        if grain:
            base = base + GRAIN_STD * grain_field(H, W, GRAIN_SIZE, rng)
        frame = from_unit(base, np.uint8)
        cv2.imwrite(str(folder / "frames" / f"{t:05d}.png"), frame[..., ::-1])
        clip.append(frame)
    mask = np.zeros((H, W), np.uint8)
    mask[:, 150:162] = 255
    cv2.imwrite(str(folder / "mask.png"), mask)
    return np.stack(clip), mask > 0


def _run(folder, out, *flags):
    assert main(["inpaint", "-i", str(folder / "frames"), "-m", str(folder / "mask.png"), "-o", str(out),
                 "--engine", "classic", "--quiet", *flags]) == 0
    frames = np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted((out / "frames").iterdir())])
    return frames, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def grainy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grainy")
    clip, mask = _write_clip(folder, grain=True)
    on, report = _run(folder, folder / "on", "--regrain", "auto")
    off, _ = _run(folder, folder / "off")  # the default: off
    return clip, mask, on, off, report


def test_auto_turns_regrain_on_for_a_grainy_plate(grainy):
    report = grainy[4]
    assert report["delivery"]["regrain_measured"]["on"] is True
    assert report["settings"]["regrain"] == "auto"


def test_outside_the_fill_stays_bit_identical(grainy):
    clip, mask, on, off, _ = grainy
    outside = cv2.dilate(mask.astype(np.uint8), np.ones((13, 13), np.uint8)) == 0  # mask + dilation 4 + margin
    assert np.array_equal(on[:, outside], clip[:, outside]) and np.array_equal(off[:, outside], clip[:, outside])
    assert not np.array_equal(on, off)


def test_fill_noise_matches_the_plate(grainy):
    clip, mask, on, off, _ = grainy
    m = mask.astype(np.uint8)
    inside = cv2.erode(m, np.ones((1, 7), np.uint8)) > 0
    ring = (cv2.dilate(m, np.ones((1, 33), np.uint8)) > 0) & ~(cv2.dilate(m, np.ones((1, 13), np.uint8)) > 0)
    ratios = [_robust(highpass(to_unit(on[t]))[inside]) / _robust(highpass(to_unit(clip[t]))[ring]) for t in range(T)]
    before = [_robust(highpass(to_unit(off[t]))[inside]) / _robust(highpass(to_unit(clip[t]))[ring]) for t in range(T)]
    assert np.mean(before) < 0.8  # the classic fill alone is smoother than the plate
    assert abs(np.mean(ratios) - 1.0) < 0.10, ratios


def test_added_grain_is_new_every_frame(grainy):
    _, mask, on, off, _ = grainy
    added = (on.astype(np.float32) - off.astype(np.float32))[:, mask]
    corr = [np.corrcoef(added[t].ravel(), added[t + 1].ravel())[0, 1] for t in range(T - 1)]
    assert abs(float(np.mean(corr))) < 0.05, corr


def test_clean_plate_stays_clean(tmp_path):
    _write_clip(tmp_path, grain=False)
    auto, report = _run(tmp_path, tmp_path / "auto", "--regrain", "auto")
    off, _ = _run(tmp_path, tmp_path / "off")
    assert report["delivery"]["regrain_measured"]["on"] is False
    assert np.array_equal(auto, off)
