"""Masks from fitted wires, and the review overlay.

A wire's mask is its curve drawn ``ceil(width) + 2 * grow`` px thick: the measured
width covers the wire's core, ``grow`` its anti-aliased fringe and the fit's error
(~0.3 px). Curves are drawn with 4 bits of sub-pixel precision (cv2 ``shift``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .track import WireFit

_SHIFT = 4  # sub-pixel bits of cv2 drawing
TINT = np.array([255, 40, 40], np.float32)  # overlay colour, RGB
TINT_ALPHA = 0.55


def mask_thickness(width: float, grow: int) -> int:
    """Drawn thickness (px) for a wire ``width`` px wide and ``grow`` px of margin each side."""
    return max(1, int(round(width)) + 2 * int(grow))


def draw_wire(mask: np.ndarray, fit: WireFit, grow: int) -> None:
    """Draw one wire into ``mask`` (H, W) uint8 in place (255 = wire)."""
    thickness = mask_thickness(fit.width, grow)
    points = fit.curve.polyline(step=2.0)
    if len(points) < 2 or not np.isfinite(points).all():
        return
    h, w = mask.shape
    # keep coordinates in cv2's int range: clip far-off points to a generous box around the frame
    points = np.clip(points, [-2 * w, -2 * h], [3 * w, 3 * h])
    pts = np.rint(points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(mask, [pts], False, 255, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT)


def render_mask(shape: tuple[int, int], fits: Sequence[WireFit], grow: int) -> np.ndarray:
    """(H, W) uint8 mask (0/255) of every wire of one frame."""
    mask = np.zeros(shape, np.uint8)
    for fit in fits:
        draw_wire(mask, fit, grow)
    return mask


def overlay(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB plate with the (H, W) mask tinted over it."""
    out = frame.astype(np.float32)
    sel = mask > 0
    out[sel] = (1.0 - TINT_ALPHA) * out[sel] + TINT_ALPHA * TINT
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
