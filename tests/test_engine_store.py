"""The ProPainter engine's clip store and frame hand-over (``engines/propainter/store.py``): uint8 input
gives the frames of float input, frames handed to ``on_final`` as they are final, the torch-threaded
uint8 conversion."""

from __future__ import annotations

import numpy as np
import pytest

from propainter_wire.config import InpaintConfig
from propainter_wire.pipeline.stages import Stages

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def engine(det_weights_dir):
    from propainter_wire.engines.propainter import ProPainterEngine

    return ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")


def _clip(t: int, h: int, w: int, seed: int = 0):
    """(t, h, w, 3) uint8 crops panning 2 px per frame over smoothed noise, and a box mask in each."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h + 8, w + 2 * t, 3), dtype=np.uint8), (5, 5), 0)
    frames = np.stack([base[i % 8:i % 8 + h, 2 * i:2 * i + w] for i in range(t)])
    masks = np.zeros((t, h, w), bool)
    masks[:, h // 4:h // 4 + h // 3, w // 4:w // 4 + w // 3] = True
    return np.ascontiguousarray(frames), masks


@pytest.mark.parametrize("size", [(32, 48), (30, 44)])  # 30x44 is padded to 32x48 inside the engine
def test_propainter_engine_uint8_input_and_callback(engine, size, monkeypatch):
    from propainter_wire.engines.base import EngineInput
    from propainter_wire.engines.propainter import completion, flows, synthesis

    tuned = []
    real_autotune = flows.cudnn_autotune
    for stage_module in (flows, completion, synthesis):
        monkeypatch.setattr(stage_module, "cudnn_autotune", lambda enabled: (tuned.append(enabled),
                                                                             real_autotune(enabled))[1])
    frames, masks = _clip(4, *size, seed=1)
    config = InpaintConfig(neighbor_length=4, raft_iters=1)

    def run(clip, on_final=None):
        return engine.run(EngineInput(frames=clip, masks=masks, flow_masks=masks, raw_masks=masks), config,
                          Stages(quiet=True), on_final=on_final)

    from_u8 = run(frames)
    from_float = run(frames.astype(np.float32) / 255)
    assert isinstance(from_u8, np.ndarray) and from_u8.dtype == np.float32 and from_u8.shape == (4, *size, 3)
    assert np.array_equal(from_u8, from_float)
    assert np.array_equal(from_u8[~masks], frames[~masks].astype(np.float32) / 255)
    assert tuned == [False, False, False] * 2  # flow, complete, transformer: never autotuned on the CPU

    handed = {}

    def on_final(index, frame):
        assert index not in handed
        handed[index] = (frame.dtype, frame.shape, np.array(frame, copy=True))

    streamed = run(frames, on_final)
    assert sorted(handed) == [0, 1, 2, 3]
    assert all(dtype == np.uint8 and shape == (*size, 3) for dtype, shape, _ in handed.values())
    assert len(streamed) == 4 and tuple(streamed.shape) == (4, *size, 3)
    for i in range(4):
        frame = streamed[i]
        assert frame.dtype == np.float32 and frame.shape == (*size, 3)
        assert np.array_equal(frame, handed[i][2].astype(np.float32) / 255)
        assert np.array_equal(frame, from_u8[i])


def test_unit_to_u8_matches_numpy_rounding():
    from propainter_wire.engines.propainter.store import _unit_to_u8

    rng = np.random.default_rng(0)
    x = rng.random((3, 8, 8, 3), dtype=np.float32)
    x[0, 0, 0] = [0.5 / 255, 1.5 / 255, 254.5 / 255]  # halves round to even, as np.rint
    x[0, 0, 1] = [-0.1, 1.0, 1.2]  # out of range clips
    want = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(_unit_to_u8(x), want)

