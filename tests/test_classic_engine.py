"""The weight-free classic engine, its flow completion and spatial fill."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from propainter_wire.config import InpaintConfig
from propainter_wire.engines.base import EngineInput
from propainter_wire.engines.classic import ClassicEngine
from propainter_wire.flow.classic import complete_flow, complete_flows, estimate_flows, prefill_grey, resize_flows
from propainter_wire.pipeline.spatial_fill import HarmonicSolver, fill_unseen, push_pull_fill, telea_fill
from propainter_wire.pipeline.stages import Stages

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _dilate(masks: np.ndarray, iterations: int = 4) -> np.ndarray:
    return np.stack([cv2.dilate(m.astype(np.uint8), _CROSS, iterations=iterations) > 0 for m in masks])


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a[where] - b[where]) ** 2)))


def _telea(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return np.stack([telea_fill(f, m) for f, m in zip(frames, masks, strict=True)])


def _run(frames, masks, raw_masks=None, engine=None, **config):
    masks = np.asarray(masks, bool)
    raw = masks if raw_masks is None else np.asarray(raw_masks, bool)
    inp = EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=raw)
    stages = Stages(quiet=True)
    out = (engine or ClassicEngine()).run(inp, InpaintConfig(**config), stages)
    return out, stages


def draw_wires(frames: np.ndarray, seed: int = 0, count: int = 3, sway: float = 1.0):
    """Draw sagging, swaying dark wires (2-6 px thick, anti-aliased) over (T, H, W, 3) [0, 1] frames.

    Returns the wired frames and the (T, H, W) bool wire mask (any coverage above 2 %).
    """
    t_len, h, w, _ = frames.shape
    rng = np.random.default_rng(seed)
    wires = [dict(left=rng.uniform(0.15, 0.7) * h, right=rng.uniform(0.15, 0.7) * h, sag=rng.uniform(0.05, 0.2) * h,
                  amp=rng.uniform(2, 8) * sway * h / 360, period=rng.uniform(20, 50), phase=rng.uniform(0, 6.28),
                  thick=int(rng.integers(2, 7)), grey=rng.uniform(0.05, 0.3)) for _ in range(count)]
    xs = np.linspace(-10, w + 10, 80)
    u = (xs + 10) / (w + 20)
    out, wire_mask = frames.copy(), np.zeros((t_len, h, w), bool)
    for t in range(t_len):
        for p in wires:
            swing = p["amp"] * np.sin(2 * np.pi * t / p["period"] + p["phase"]) * np.sin(np.pi * u)
            ys = p["left"] * (1 - u) + p["right"] * u + 4 * p["sag"] * u * (1 - u) + swing
            points = np.round(np.stack([xs, ys], 1) * 16).astype(np.int32)
            alpha = np.zeros((h, w), np.float32)
            cv2.polylines(alpha, [points], False, 1.0, max(1, p["thick"] * w // 640), cv2.LINE_AA, shift=4)
            out[t] = out[t] * (1 - alpha[..., None]) + p["grey"] * alpha[..., None]
            wire_mask[t] |= alpha > 0.02
    return out, wire_mask


def _translating_clip(t_len=8, h=64, w=96, step=(2, 1)):
    rng = np.random.default_rng(3)
    canvas = cv2.GaussianBlur(rng.random((h + 40, w + 40, 3)).astype(np.float32), (0, 0), 1.5)
    canvas = (canvas - canvas.min()) / (canvas.max() - canvas.min())
    frames = np.stack([canvas[t * step[1]:t * step[1] + h, t * step[0]:t * step[0] + w] for t in range(t_len)])
    masks = np.zeros((t_len, h, w), bool)
    for t in range(t_len):
        masks[t, 20:36, 30 + 2 * t:46 + 2 * t] = True  # a box moving right
    return np.ascontiguousarray(frames), masks


# ------------------------------------------------------------------ flow completion


def test_constant_flow_is_reproduced_in_hole():
    flow = np.zeros((40, 50, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.5, -1.25
    hole = np.zeros((40, 50), bool)
    hole[10:30, 5:35] = True
    hole[0:12, 40:50] = True  # touching the image border (Neumann side)
    corrupted = flow.copy()
    corrupted[hole] = 40.0
    done = complete_flow(corrupted, hole)
    assert np.abs(done - flow).max() < 1e-3
    assert np.array_equal(done[~hole], corrupted[~hole])


def test_linear_field_is_reproduced_in_interior_hole():
    yy, xx = np.mgrid[0:30, 0:40].astype(np.float32)
    field = np.stack([0.1 * xx - 0.05 * yy, 0.02 * xx + 0.3], -1)
    hole = np.zeros((30, 40), bool)
    hole[8:20, 10:32] = True
    got = HarmonicSolver(hole).fill(np.where(hole[..., None], 0, field))
    assert np.abs(got - field).max() < 1e-3


def test_complete_flows_uses_each_source_frames_hole():
    flows = np.ones((2, 8, 8, 2), np.float32)
    masks = np.zeros((3, 8, 8), bool)
    masks[0, 2:4, 2:4] = masks[1, 5:7, 5:7] = masks[2, 1:3, 5:7] = True
    bad_f, bad_b = flows.copy(), flows.copy()
    bad_f[0][masks[0]] = bad_f[1][masks[1]] = 9
    bad_b[0][masks[1]] = bad_b[1][masks[2]] = 9
    out_f, out_b = complete_flows(bad_f, bad_b, masks)
    np.testing.assert_allclose(out_f, flows, atol=1e-5)
    np.testing.assert_allclose(out_b, flows, atol=1e-5)


def test_whole_frame_hole_falls_back():
    assert np.all(HarmonicSolver(np.ones((4, 5), bool)).fill(np.ones((4, 5, 2))) == 0)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_estimate_flows_finds_translation(method):
    frames, _ = _translating_clip(t_len=3, h=64, w=96)
    grey = np.stack([cv2.cvtColor((f * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in frames])
    flows_f, flows_b = estimate_flows(grey, method)
    assert flows_f.shape == flows_b.shape == (2, 64, 96, 2)
    centre = (slice(16, 48), slice(24, 72))
    np.testing.assert_allclose(np.median(flows_f[0][centre].reshape(-1, 2), 0), [-2, -1], atol=0.3)
    np.testing.assert_allclose(np.median(flows_b[0][centre].reshape(-1, 2), 0), [2, 1], atol=0.3)


# ------------------------------------------------------------------ spatial fill


def test_fill_unseen_carries_previous_fill_under_zero_flow():
    rng = np.random.default_rng(0)
    frame = rng.random((20, 24, 3)).astype(np.float32)
    frames = np.stack([frame, frame + 0.01, frame])  # unseen region must still be steady
    unseen = np.zeros((3, 20, 24), bool)
    unseen[:, 8:12, 5:15] = True
    out = fill_unseen(frames, unseen, np.zeros((2, 20, 24, 2), np.float32))
    np.testing.assert_array_equal(out[1][unseen[1]], out[0][unseen[0]])
    np.testing.assert_array_equal(out[2][unseen[2]], out[0][unseen[0]])
    np.testing.assert_array_equal(out[~unseen], frames[~unseen])


# ------------------------------------------------------------------ engine


def test_engine_beats_telea_on_translating_texture():
    frames, masks = _translating_clip()
    damaged = np.where(masks[..., None], 0.0, frames).astype(np.float32)
    out, stages = _run(damaged, masks)
    assert out.shape == frames.shape and out.dtype == np.float32
    assert np.array_equal(out[~masks], damaged[~masks])
    assert out.min() >= 0 and out.max() <= 1
    ours, telea = _psnr(out, frames, masks), _psnr(_telea(damaged, masks), frames, masks)
    assert ours > telea + 5, (ours, telea)
    assert {"flow", "complete", "propagate", "spatial"} <= set(stages.seconds)


def test_engine_single_frame_is_spatial_only():
    frames, masks = _translating_clip(t_len=1)
    out, stages = _run(frames, masks)
    assert set(stages.seconds) == {"spatial"}
    np.testing.assert_allclose(out, _telea(frames, masks), atol=1e-6)


def test_engine_two_frames_and_farneback():
    frames, masks = _translating_clip(t_len=2)
    out, _ = _run(frames, masks, classic_flow="farneback")
    assert out.shape == frames.shape
    assert np.array_equal(out[~masks], frames[~masks])
    assert np.isfinite(out).all()


def test_engine_no_mask_returns_input():
    frames, masks = _translating_clip(t_len=3)
    out, _ = _run(frames, np.zeros_like(masks))
    assert np.array_equal(out, frames)


def test_engine_beats_telea_on_real_footage_with_wires(data_dir):
    av = pytest.importorskip("av")
    path = data_dir / "footage" / "test-sample0.mp4"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    with av.open(str(path)) as container:
        clip = []
        for frame in container.decode(video=0):
            clip.append(cv2.resize(frame.to_ndarray(format="rgb24"), (320, 180), interpolation=cv2.INTER_AREA))
            if len(clip) == 12:
                break
    truth = np.stack(clip).astype(np.float32) / 255.0
    wired, wire_mask = draw_wires(truth, seed=1)
    masks = _dilate(wire_mask, 2)
    out, _ = _run(wired, masks)
    ours, telea = _psnr(out, truth, wire_mask), _psnr(_telea(wired, masks), truth, wire_mask)
    print(f"wires: classic {ours:.2f} dB, telea {telea:.2f} dB")
    assert ours > telea + 1.0, (ours, telea)


# ------------------------------------------------------------------ push-pull fill, flow grid


def test_push_pull_keeps_known_and_reproduces_constants():
    rng = np.random.default_rng(0)
    values = rng.random((40, 60, 3)).astype(np.float32)
    hole = np.zeros((40, 60), bool)
    hole[10:14, :] = True  # a full-width thin strip
    hole[25:38, 20:45] = True  # and a wide box
    out = push_pull_fill(values, ~hole)
    assert out.shape == values.shape and out.dtype == np.float32
    assert np.array_equal(out[~hole], values[~hole])
    const = np.full((40, 60, 2), 3.5, np.float32)
    np.testing.assert_allclose(push_pull_fill(np.where(hole[..., None], -9, const), ~hole)[hole], 3.5, atol=1e-4)
    assert np.array_equal(push_pull_fill(values[..., 0], np.ones((40, 60), bool)), values[..., 0])


def test_push_pull_thin_strip_takes_local_values():
    # left half moves by +4, right half by -4; a thin full-width strip must not mix the two far from x = 30
    field = np.where(np.arange(60)[None, :] < 30, 4.0, -4.0).astype(np.float32) * np.ones((40, 1), np.float32)
    hole = np.zeros((40, 60), bool)
    hole[18:22, :] = True
    out = push_pull_fill(np.where(hole, 0, field), ~hole)
    np.testing.assert_allclose(out[18:22, :20], 4.0, atol=0.05)
    np.testing.assert_allclose(out[18:22, 40:], -4.0, atol=0.05)


def test_complete_flows_push_pull_and_bad_solver():
    flows = np.full((2, 16, 16, 2), 1.5, np.float32)
    masks = np.zeros((3, 16, 16), bool)
    masks[:, 6:9, :] = True
    bad = np.where(masks[:2, ..., None], 9.0, flows).astype(np.float32)
    out_f, out_b = complete_flows(bad, bad, masks, solver="push-pull")
    np.testing.assert_allclose(out_f, flows, atol=1e-4)
    np.testing.assert_allclose(out_b, flows, atol=1e-4)
    with pytest.raises(ValueError):
        complete_flows(bad, bad, masks, solver="nope")


def test_prefill_grey_scale_and_resize_flows():
    frames = np.random.default_rng(1).random((2, 40, 64, 3)).astype(np.float32)
    grey = prefill_grey(frames, np.zeros((2, 40, 64), bool), scale=0.5)
    assert grey.shape == (2, 20, 32) and grey.dtype == np.uint8
    flows = np.ones((1, 20, 32, 2), np.float32) * np.array([1.0, -2.0], np.float32)
    big = resize_flows(flows, 40, 64)
    assert big.shape == (1, 40, 64, 2)
    np.testing.assert_allclose(big[..., 0], 2.0, atol=1e-5)
    np.testing.assert_allclose(big[..., 1], -4.0, atol=1e-5)
    with pytest.raises(ValueError):
        prefill_grey(frames, np.zeros((2, 40, 64), bool), scale=0.0)


# ------------------------------------------------------------------ engine: hole and switches


def test_engine_fills_user_mask_and_keeps_footage_of_dilation_ring():
    frames, raw = _translating_clip()
    damaged = np.where(raw[..., None], 0.0, frames).astype(np.float32)
    dilated = _dilate(raw, 3)
    out, _ = _run(damaged, dilated, raw_masks=raw)
    ring = dilated & ~raw
    assert np.array_equal(out[ring], damaged[ring])  # real footage, kept
    assert _psnr(out, frames, raw) > _psnr(_telea(damaged, raw), frames, raw) + 5


@pytest.mark.parametrize("switch", [dict(use_flow_completion=False), dict(use_refinement=True),
                                    dict(use_blending=False), dict(passes=1), dict(temporal_spatial_fill=True),
                                    dict(flow_scale=0.5, completion_margin=2), dict(unseen_from_input=True)])
def test_engine_switches_run_and_stay_valid(switch):
    frames, masks = _translating_clip(t_len=5)
    damaged = np.where(masks[..., None], 0.0, frames).astype(np.float32)
    out, _ = _run(damaged, masks, engine=ClassicEngine(**switch))
    assert out.shape == frames.shape and np.isfinite(out).all()
    assert np.array_equal(out[~masks], damaged[~masks])
    assert _psnr(out, frames, masks) > _psnr(_telea(damaged, masks), frames, masks)


def test_engine_without_propagation_is_telea():
    frames, masks = _translating_clip(t_len=4)
    out, stages = _run(frames, masks, engine=ClassicEngine(use_propagation=False))
    assert set(stages.seconds) == {"spatial"}
    np.testing.assert_allclose(out, _telea(frames, masks), atol=1e-6)


def test_more_passes_do_not_hurt_on_translating_texture():
    frames, masks = _translating_clip()
    damaged = np.where(masks[..., None], 0.0, frames).astype(np.float32)
    one, _ = _run(damaged, masks, engine=ClassicEngine(passes=1))
    three, _ = _run(damaged, masks, engine=ClassicEngine(passes=3))
    assert _psnr(three, frames, masks) > _psnr(one, frames, masks) - 0.5
