"""One ProPainter engine runs many clips: the networks load once, and nothing of a clip (its store, its
preloading) outlives its run, so clip after clip gives each clip's frames as a fresh engine does, also
after a clip that failed mid-run (CPU, deterministic stand-in weights)."""

from __future__ import annotations

import numpy as np
import pytest

from propainter_wire.config import InpaintConfig
from propainter_wire.engines.base import EngineInput
from propainter_wire.engines.propainter import ProPainterEngine
from propainter_wire.engines.propainter import engine as engine_module
from propainter_wire.pipeline.stages import Stages

pytestmark = pytest.mark.usefixtures("one_thread")
CONFIG = InpaintConfig(neighbor_length=4, ref_stride=3, subvideo_length=4, raft_iters=1)


def _clip(seed: int, t: int, h: int, w: int) -> EngineInput:
    rng = np.random.default_rng(seed)
    base = rng.random((h + 8, w + 2 * t, 3)).astype(np.float32)
    frames = np.stack([base[i % 4:i % 4 + h, 2 * i:2 * i + w] for i in range(t)])
    masks = np.zeros((t, h, w), bool)
    masks[:, h // 4:h // 2 + 2, w // 3:w // 2 + 3] = True
    return EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=masks)


def _run(engine: ProPainterEngine, inp: EngineInput) -> np.ndarray:
    return np.asarray(engine.run(inp, CONFIG, Stages(quiet=True)))


def test_clips_in_a_row_equal_fresh_engines(det_weights_dir):
    first, second = _clip(1, 6, 32, 48), _clip(2, 5, 30, 40)  # different lengths and (padded) sizes
    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    in_a_row = [_run(engine, first), _run(engine, second), _run(engine, first)]
    fresh = [_run(ProPainterEngine(det_weights_dir, device="cpu", precision="fp32"), inp) for inp in (first, second)]
    assert np.array_equal(in_a_row[0], fresh[0]) and np.array_equal(in_a_row[1], fresh[1])
    assert np.array_equal(in_a_row[2], fresh[0])


def test_a_failed_clip_leaves_the_engine_usable(det_weights_dir, monkeypatch):
    clip = _clip(3, 6, 32, 48)
    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    expected = _run(ProPainterEngine(det_weights_dir, device="cpu", precision="fp32"), clip)
    real = engine_module.propagate
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a stage failed mid-run")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "propagate", fails_once)
    with pytest.raises(RuntimeError, match="mid-run"):
        _run(engine, _clip(4, 7, 32, 48))
    assert engine.preloader.pending == {}
    assert np.array_equal(_run(engine, clip), expected)
