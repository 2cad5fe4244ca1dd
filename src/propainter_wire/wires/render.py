"""Masks from fitted wires, and the review overlay.

A wire's mask is every pixel whose centre lies within ``width / 2 + FRINGE + grow``
of its curve (measured across the curve, sub-pixel): the measured width covers the
wire's core, ``FRINGE`` the partly covered pixels at its anti-aliased edge (a pixel
whose centre is up to half a pixel outside the edge is still tinted), ``grow`` the
fit's error (median 0.2 px, up to 1-1.5 px at crossings on the harness) and the user's margin.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .track import WireFit

_SHIFT = 4  # sub-pixel bits of cv2 drawing
FRINGE = 0.6  # px: a pixel centre up to 0.5 px (+ drawing slack) past the edge is partly covered
TINT = np.array([255, 40, 40], np.float32)  # overlay colour, RGB
TINT_ALPHA = 0.55


def half_width(width: float, grow: float) -> float:
    """Half the mask's width (px) for a wire ``width`` px wide and ``grow`` px of margin each side."""
    return 0.5 * max(float(width), 1.0) + FRINGE + max(float(grow), 0.0)


def mask_thickness(width: float, grow: float) -> float:
    """The mask's width (px) across a wire ``width`` px wide with ``grow`` px of margin each side."""
    return round(2.0 * half_width(width, grow), 2)


def draw_wire(mask: np.ndarray, fit: WireFit, grow: float) -> None:
    """Draw one wire into ``mask`` (H, W) uint8 in place (255 = wire): every pixel whose centre lies
    within ``half_width`` of the curve (distance across the curve, sub-pixel) over its span."""
    half = half_width(fit.width, grow)
    points = fit.curve.polyline(step=2.0)
    if len(points) < 2 or not np.isfinite(points).all():
        return
    h, w = mask.shape
    # keep coordinates in cv2's int range: clip far-off points to a generous box around the frame
    points = np.clip(points, [-2 * w, -2 * h], [3 * w, 3 * h])
    pts = np.rint(points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    band = np.zeros_like(mask)
    cv2.polylines(band, [pts], False, 255, thickness=2 * int(np.ceil(half)) + 3, lineType=cv2.LINE_8, shift=_SHIFT)
    ys, xs = np.nonzero(band)
    if not len(xs):
        return
    curve = fit.curve
    uv = curve.axes.to_uv(np.stack([xs, ys], axis=1).astype(np.float64))
    u = uv[:, 0]
    across = np.abs(uv[:, 1] - curve.v(u)) / np.sqrt(1.0 + curve.slope(u) ** 2)
    keep = (across <= half) & (u >= curve.start - half) & (u <= curve.end + half)
    mask[ys[keep], xs[keep]] = 255


def render_mask(shape: tuple[int, int], fits: Sequence[WireFit], grow: float) -> np.ndarray:
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
