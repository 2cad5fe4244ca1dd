"""The engine loads on a thread while frames decode; its errors surface at result(), and a failed run
waits for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from propainter_wire.config import InpaintConfig


def test_engine_loader_returns_the_engine_or_raises_its_error(tmp_path):
    """The engine loads on a thread while frames decode; its errors surface at result()."""
    from propainter_wire.errors import WeightsError
    from propainter_wire.runner.engines import EngineLoader

    ok = EngineLoader(InpaintConfig(engine="classic"), torch.device("cpu"))
    assert ok.result().name == "classic" and ok.device == torch.device("cpu")
    missing = EngineLoader(InpaintConfig(engine="propainter", weights_dir=tmp_path / "none"), torch.device("cpu"))
    with pytest.raises(WeightsError):
        missing.result()


def test_a_failed_run_waits_for_the_engine_loader(tmp_path, monkeypatch):
    """A run that fails while the engine still loads waits for the loader thread before raising: a
    thread inside torch at interpreter exit aborts the process (exit 134 instead of the run's own)."""
    import threading
    import time

    import cv2

    import propainter_wire
    from propainter_wire.errors import InputError
    from propainter_wire.runner import engines, files

    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for t in range(6):
        cv2.imwrite(str(frames / f"{t:03d}.png"), np.full((32, 48, 3), 40 * t, np.uint8))
        cv2.imwrite(str(masks / f"{t:03d}.png"), np.full((32, 48), 255, np.uint8))
    finished = threading.Event()
    real = engines.build_engine

    def slow(*args, **kwargs):
        time.sleep(0.5)  # still loading when the run fails
        engine = real(*args, **kwargs)
        finished.set()
        return engine

    def failing(*args, **kwargs):  # a failure after the frames are read (a bad output folder, say)
        raise InputError("cannot write here", tmp_path / "out")

    monkeypatch.setattr(engines, "build_engine", slow)
    monkeypatch.setattr(files, "fill_and_write", failing)
    with pytest.raises(InputError, match="cannot write here"):
        propainter_wire.inpaint(frames, masks, tmp_path / "out", engine="classic", device="cpu", quiet=True)
    assert finished.is_set()
    assert not any(t.name == "engine-loader" for t in threading.enumerate())

