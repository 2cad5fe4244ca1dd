"""The Python API: what the CLI calls.

    import propainter_wire as pw
    report = pw.inpaint("shot/frames", "shot/masks", "out", engine="classic", max_side=960)
    frames_out = pw.inpaint_arrays(frames, masks, engine="classic")

A file run is safe to interrupt: every frame lands atomically as soon as it is
composited, and ``manifest.json`` (written before the first frame) records the
inputs and settings, so ``resume=True`` finishes the run with the same result as
an uninterrupted one. A run that fails before writing any frame leaves no trace
in the output folder.

Each entry point reads the tuning switches (docs/tuning.md) once, with
:meth:`Tuning.from_env`, and hands them down; the work itself is :mod:`propainter_wire.runner`'s.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .config import InpaintConfig
from .errors import InputError
from .pipeline.stages import Stages
from .samples import SAMPLE_TYPES
from .tuning import Tuning


def _build_config(config: InpaintConfig | None, overrides: dict) -> InpaintConfig:
    """``config`` (default: ``InpaintConfig()``) with ``overrides`` applied, validated.

    Raises:
        TypeError: an override that is no setting.
        InputError: a value out of range (``InpaintConfig.validate``).
    """
    config = config or InpaintConfig()
    if overrides:
        unknown = set(overrides) - set(InpaintConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        if overrides.get("weights_dir") is not None:
            overrides = {**overrides, "weights_dir": Path(overrides["weights_dir"])}
        config = config.replace(**overrides)
    return config.validate()


def inpaint(video: str | Path, mask: str | Path, output: str | Path, config: InpaintConfig | None = None,
            **overrides) -> dict:
    """Inpaint a frame folder or video with its masks; write the frames and a report.

    Writes ``OUTPUT/frames/<input frame stem>.png`` (16-bit in -> 16-bit out, EXR in
    -> EXR out), ``OUTPUT/manifest.json``, ``OUTPUT/report.json``, and
    ``OUTPUT/inpainted.mp4`` with ``save_video``. Every file lands atomically; each
    frame is written as soon as it is composited. Returns the report.

    Order of work: settings, inputs (every frame and mask decoded), output folder,
    checkpoints, engine, then frames. Whatever fails before the first frame is
    written leaves the output folder as it was (a folder this run created is removed).

    Raises:
        InputError: a bad path, file or value (the message names it); a write failure
            (disk full, read-only folder) naming the file; frames written so far are kept.
        StageError: an engine stage failed (CUDA error, out of memory); names the stage.
        KeyboardInterrupt: frames written so far are kept; ``resume=True`` finishes the run.
        TuningError: a tuning switch with a value it does not take (a ``ValueError``; names the variable).
    """
    from .runner.files import inpaint_files

    start = time.perf_counter()
    config = _build_config(config, overrides)
    tuning = Tuning.from_env()
    return inpaint_files(video, mask, output, config, tuning, start)


def inpaint_arrays(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig | None = None,
                   **overrides) -> np.ndarray:
    """Inpaint a clip held in memory.

    Args:
        frames: (T, H, W, 3) RGB: uint8, uint16, or float32/float16 (display-referred in [0, 1], or
            scene-linear with ``colorspace`` set or left to the float default: see docs/plates.md).
        masks: (T, H, W) or (H, W) (static); non-zero = to remove.
        config / overrides: settings, as for ``inpaint``.
    Returns:
        (T, H, W, 3) in the frames' dtype; bit-identical to the input outside the dilated mask.
    Raises:
        InputError: shapes or sample type not as above; every pixel of every frame masked.
        TuningError: a tuning switch with a value it does not take (a ``ValueError``; names the variable).
    """
    from .runner.inputs import run_engine

    config = _build_config(config, overrides)
    tuning = Tuning.from_env()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise InputError(f"frames must be (T, H, W, 3) with T, H, W >= 1, got {frames.shape}")
    if frames.dtype not in (*SAMPLE_TYPES, np.dtype(np.float16)):
        raise InputError(f"frames must be uint8, uint16, float32 or float16, got {frames.dtype}")
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks, frames.shape[:3])
    if masks.shape != frames.shape[:3]:
        raise InputError(f"masks {masks.shape} do not match frames {frames.shape[:3]}")
    masks = masks > (config.mask_threshold if masks.dtype == np.uint8 else 0)
    out = run_engine(list(frames), list(masks), config, Stages(quiet=True), tuning=tuning)
    return np.stack(out)
