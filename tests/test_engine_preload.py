"""Kernel preloading (``engines/propainter/preload.py``): GPU only, and it changes no result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from propainter_wire.config import InpaintConfig
from propainter_wire.pipeline.stages import Stages
from propainter_wire.tuning import Tuning

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(frames: int = 10, height: int = 64, width: int = 96):
    rng = np.random.default_rng(1)
    base = rng.random((height + 16, width + 40, 3)).astype(np.float32)
    clip = np.stack([base[8:8 + height, 2 * t:2 * t + width] for t in range(frames)])
    masks = np.zeros((frames, height, width), bool)
    masks[:, 20:40, 30:60] = True
    return clip, masks


def test_preloading_is_gpu_only(det_weights_dir):
    """The later stages' kernels are preloaded on a GPU only: nothing starts on the CPU."""
    from propainter_wire.engines.propainter import ProPainterEngine

    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    engine.preloader.start(64, 96, 10)
    assert engine.preloader.pending == {}
    engine.preloader.wait("inpainter")  # nothing to wait for


@needs_cuda
def test_preloading_keeps_results(det_weights_dir, monkeypatch):
    """Placing the later networks and running them on stand-ins on a side thread while RAFT runs changes
    no result (fp16, the same frames as without), and both parts are waited for and consumed."""
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.runner.inputs import prepare_engine_input

    clip, masks = _clip(frames=20)
    outs, started = {}, {}
    for name, flag in (("preloaded", True), ("plain", False)):
        config = InpaintConfig(precision="fp16")
        engine = ProPainterEngine(det_weights_dir, device="cuda", precision="fp16", tuning=Tuning(preload=flag))
        # several RAFT chunks: the preload starts after the graph is recorded
        engine.memory = engine.memory.replace(raft_chunk_frames=4)
        start = engine.preloader.start
        engine.preloader.start = lambda *a, start=start, name=name: (started.setdefault(name, True), start(*a))
        outs[name] = engine.run(prepare_engine_input(list(clip), list(masks), config), config, Stages())
        assert engine.preloader.pending == {}
    assert started == {"preloaded": True, "plain": True}
    np.testing.assert_allclose(outs["preloaded"], outs["plain"], atol=1.5 / 255)  # as graphs on/off above
    assert np.abs(outs["preloaded"] - outs["plain"]).mean() < 1e-4

