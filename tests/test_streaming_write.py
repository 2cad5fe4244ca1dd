"""The propainter engine hands frames over as soon as they are final; the pipeline writes them at once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from propainter_wire.cli import main
from propainter_wire.engines.propainter import ProPainterEngine
from propainter_wire.io.frames import FolderFrames

T, H, W = 12, 40, 56


@pytest.fixture()
def clip(tmp_path):
    rng = np.random.default_rng(3)
    base = (rng.random((H + 8, W + 2 * T, 3)) * 255).astype(np.uint8)
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for t in range(T):
        frame = base[4:4 + H, 2 * t:2 * t + W].copy()
        mask = np.zeros((H, W), np.uint8)
        mask[12:24, 8 + t:20 + t] = 255
        frame[mask > 0] = (255, 0, 255)
        cv2.imwrite(str(frames / f"{t:03d}.png"), frame)
        cv2.imwrite(str(masks / f"{t:03d}.png"), mask)
    return frames, masks


def _argv(clip, out, weights):
    return ["inpaint", "-i", str(clip[0]), "-m", str(clip[1]), "-o", str(out), "--engine", "propainter",
            "--weights-dir", str(weights), "--device", "cpu", "--precision", "fp32", "--raft-iters", "2",
            "--neighbor-length", "4", "--quiet"]


def _frames(out):
    return [(out / "frames" / f"{t:03d}.png").read_bytes() for t in range(T)]


def test_frames_are_written_while_the_engine_works(clip, tmp_path, det_weights_dir, monkeypatch):
    events = []
    real_write, real_run = FolderFrames.write_frame, ProPainterEngine.run

    def write(self, index, path, image):
        events.append("write")
        real_write(self, index, path, image)

    def run(self, *args, **kwargs):
        result = real_run(self, *args, **kwargs)
        events.append("engine returned")
        return result

    monkeypatch.setattr(FolderFrames, "write_frame", write)
    monkeypatch.setattr(ProPainterEngine, "run", run)
    assert main(_argv(clip, tmp_path / "out", det_weights_dir)) == 0
    assert events.count("write") == T
    assert events.index("engine returned") > 0, "no frame was written before the engine finished"


def test_interrupted_propainter_run_keeps_early_frames_and_resumes_identically(clip, tmp_path, det_weights_dir,
                                                                                monkeypatch):
    assert main(_argv(clip, tmp_path / "whole", det_weights_dir)) == 0
    expected = _frames(tmp_path / "whole")

    real = ProPainterEngine.synthesize

    def synthesize(self, *args, on_final=None, **kwargs):
        count = []

        def emit(idx, frame):
            on_final(idx, frame)
            count.append(idx)
            if len(count) == 4:
                raise KeyboardInterrupt

        return real(self, *args, on_final=emit, **kwargs)

    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(ProPainterEngine, "synthesize", synthesize)
        assert main(_argv(clip, out, det_weights_dir)) == 130
    early = sorted(p.name for p in (out / "frames").glob("*.png"))
    assert len(early) == 4
    assert main([*_argv(clip, out, det_weights_dir), "--resume"]) == 0
    assert _frames(out) == expected
