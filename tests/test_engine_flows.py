"""The ProPainter engine's RAFT stage (``engines/propainter/flows.py``): CUDA graphs on or off give the same
frames; fp16 with half storage stays close to fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from propainter_wire.config import InpaintConfig
from propainter_wire.pipeline.stages import Stages

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(frames: int = 10, height: int = 64, width: int = 96):
    rng = np.random.default_rng(1)
    base = rng.random((height + 16, width + 40, 3)).astype(np.float32)
    clip = np.stack([base[8:8 + height, 2 * t:2 * t + width] for t in range(frames)])
    masks = np.zeros((frames, height, width), bool)
    masks[:, 20:40, 30:60] = True
    return clip, masks


@needs_cuda
def test_engine_switches_keep_results(det_weights_dir, monkeypatch):
    """Graphs on or off: the same fp16 frames; fp16 (half storage) stays close to fp32 in the mask."""
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.runner.inputs import prepare_engine_input
    from propainter_wire.tuning import Tuning

    clip, masks = _clip()
    outs = {}
    for name, graphs in (("fast", True), ("plain", False)):

        config = InpaintConfig(precision="fp16")
        engine = ProPainterEngine(det_weights_dir, device="cuda", precision="fp16", tuning=Tuning(cuda_graphs=graphs))
        engine.memory = engine.memory.replace(resident_bytes=0)  # whole-clip tensors on the host, as on a long clip
        outs[name] = engine.run(prepare_engine_input(list(clip), list(masks), config), config, Stages())
    np.testing.assert_allclose(outs["fast"], outs["plain"], atol=1.5 / 255)
    config = InpaintConfig(precision="fp32")
    ref = ProPainterEngine(det_weights_dir, device="cuda", precision="fp32").run(
        prepare_engine_input(list(clip), list(masks), config), config, Stages())
    err = ((outs["fast"] - ref)[masks] ** 2).mean()
    assert 10 * np.log10(1 / max(err, 1e-12)) >= 40

