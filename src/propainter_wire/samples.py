"""Sample-type conversions: every change between ``uint8``, ``uint16``, float and unit float lives here.

Frames are (..., H, W, 3) arrays in one of the supported sample types (:data:`SAMPLE_TYPES`):
``uint8`` in [0, 255], ``uint16`` in [0, 65535], ``float32`` in [0, 1] (EXR and float TIFF
may hold scene-linear values outside it). The engines work in *unit float*: float32 in [0, 1].

Two 8-bit roundings exist on purpose, and each keeps its users' output bit for bit:

- :func:`to_uint8` (frames of the result video, evaluation): 16-bit drops the low byte
  (``x // 257``), float rounds to nearest (``rint``, ties to even).
- :func:`to_uint8_half_up` (:class:`~propainter_wire.io.output.VideoWriter` given non-8-bit
  frames): 16-bit rounds to nearest (``(x + 128) // 257``), float rounds ties up
  (``clip(x, 0, 1) * 255 + 0.5``, truncated).
"""

from __future__ import annotations

import numpy as np

SAMPLE_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
"""The sample types a clip may have: uint8, uint16 and float32."""

_PEAK = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_unit(frame: np.ndarray) -> np.ndarray:
    """A frame of any supported type as float32 in [0, 1]: integers scaled by 1/255 or 1/65535,
    floats clipped to [0, 1] (scene-linear EXR values above 1 become 1)."""
    peak = _PEAK.get(frame.dtype)
    if peak is not None:
        return frame.astype(np.float32) / peak
    return np.clip(frame.astype(np.float32), 0.0, 1.0)


def from_unit(frame: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`to_unit`: unit float -> ``dtype``, integers rounded to the nearest level
    (``clip(rint(x * peak), 0, peak)``); a float ``dtype`` is a plain cast (no clipping)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(np.rint(frame * 65535.0), 0, 65535).astype(np.uint16)
    return frame.astype(dtype)


def unit_frames(frames) -> np.ndarray:
    """An engine's input stack as float32 in [0, 1]: uint8 scaled by 1/255, float returned as
    float32 (the same array when it already is contiguous float32; no clipping)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    return np.ascontiguousarray(frames, dtype=np.float32)


def unit_to_uint8(frame: np.ndarray) -> np.ndarray:
    """Unit float -> uint8: ``clip(rint(x * 255), 0, 255)``."""
    return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)


def unit_to_uint8_threaded(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) unit float -> uint8 with the arithmetic of :func:`unit_to_uint8` (float32
    ``clip(rint(x * 255), 0, 255)``), on torch's threads: the single-threaded numpy form took
    about a second for 80 frames of 720p. uint8 frames pass through unchanged."""
    if frames.dtype == np.uint8:
        return frames
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A frame of any supported type as uint8: uint8 as it is, uint16 ``x // 257`` (the high
    byte), float ``clip(rint(x * 255), 0, 255)``."""
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return (frame // 257).astype(np.uint8)
    return unit_to_uint8(frame)


def to_uint8_half_up(frame: np.ndarray) -> np.ndarray:
    """A frame as uint8, rounding half up: uint16 ``(x + 128) // 257``, float
    ``clip(x, 0, 1) * 255 + 0.5`` truncated.

    Raises:
        ValueError: a sample type other than uint8, uint16 or float.
    """
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return ((frame.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(frame.dtype, np.floating):
        return (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ValueError(f"cannot convert {frame.dtype} frames to 8 bits")
