"""Frames as the wire tracker needs them: grey levels 0..255 (float32), any sample type in."""

from __future__ import annotations

import cv2
import numpy as np


def to_grey_u8(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 / uint16 / float [0, 1] -> (H, W) uint8 grey (ITU-R 601 luma)."""
    frame = np.asarray(frame)
    if frame.dtype == np.uint16:
        frame = (frame // 257).astype(np.uint8)
    elif frame.dtype != np.uint8:
        frame = np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def to_rgb_u8(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in any sample type -> uint8 (for overlays)."""
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return (frame // 257).astype(np.uint8)
    return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
