"""Masks from fitted wires, and the review overlay.

A wire's mask is every pixel whose centre lies within ``width / 2 + FRINGE + grow``
of its curve (measured across the curve, sub-pixel): the measured width covers the
wire's core, ``FRINGE`` the partly covered pixels at its anti-aliased edge (a pixel
whose centre is up to half a pixel outside the edge is still tinted), ``grow`` the
fit's error (median 0.2 px, up to 1-1.5 px at crossings on the harness) and the user's margin.

Past the span of ``u`` where a frame saw its wire, the curve is the fit's continuation (end
tangent and bend, ``curve.py``), whose error grows with the distance: a thin wire fading over a
surface of its own grey near the frame edge left the continuation 2-9 px off over its last 40-80
px. There the mask widens by ``END_SPREAD`` px per px beyond the seen span, up to ``END_SPREAD_MAX``
px each side, in frames whose seen span covers at least ``seen.SEEN_ENOUGH`` of the curve's part in
the frame (where less was seen the whole curve is a guess, and widening all of it only adds area).
Generated sets (``quality.wires``, clicks +-2 px; without -> with): cases under the coverage targets
seed 1 13 -> 8 of 40, seed 2 12 -> 9, night 12 -> 11 of 20; mean coverage 97.17 -> 97.40 %,
98.35 -> 98.62 %, 89.74 -> 90.01 %; largest excess 2.26 -> 2.37, 2.40 -> 2.74, 2.04 -> 2.05. With clicks
+-5 px: 18 -> 10, 15 -> 12, 12 -> 12. At 0.2 px per px up to 6 px: one case fewer under target, excess
up to 2.90; with every frame widened (no ``SEEN_ENOUGH``), a lost wire's mask reached 3.19x.

Where a frame's curve was carried from its neighbour (the wire not found: ``track.py`` moves the
last curve on by its last motion), the whole mask widens by ``CARRY_SPREAD`` px per frame carried in
a row, up to ``CARRY_SPREAD_MAX`` px each side: a carried curve cannot follow a sway's turn, and on
the harness's dark wires drifting out of the frame over a dark crowd its error grew by 0.5-1 px a
frame. Generated sets (clicks +-2 px; without -> with): cases under the coverage targets seed 1 8 -> 6
of 40, seed 2 7 -> 6, seed 4 7 -> 7, night (seeds 3, 5) 5 -> 5 and 6 -> 6 of 20; mean coverage 98.02
-> 98.40 %, 98.69 -> 99.32, 98.79 -> 99.02, 97.13 -> 97.14, 98.07 -> 98.43; the six fixed cases
unchanged (0). The largest excess rose only on cases under the coverage targets either way (seed 2
g12 2.74 -> 3.17x at 85 -> 94 % coverage, seed 4 g22 2.26 -> 3.07x at 59 -> 69 %); elsewhere it
stayed at most 2.65x. At 1 px a frame up to 4 px: the same counts, mean coverage 0.1 point higher,
excess up to 3.54x; doubtful frames widened too: seed 1 5 and seed 4 6 cases, excess up to 5.39x.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .seen import SEEN_ENOUGH, seen_share
from .track import WireFit

_SHIFT = 4  # sub-pixel bits of cv2 drawing
FRINGE = 0.6  # px: a pixel centre up to 0.5 px (+ drawing slack) past the edge is partly covered
END_SPREAD = 0.15  # px of margin per px of curve beyond the seen span
END_SPREAD_MAX = 4.0  # px each side
CARRY_SPREAD = 0.5  # px of margin per frame a curve has been carried in a row
CARRY_SPREAD_MAX = 3.0  # px each side
TINT = np.array([255, 40, 40], np.float32)  # overlay colour, RGB
TINT_ALPHA = 0.55


def half_width(width: float, grow: float) -> float:
    """Half the mask's width (px) for a wire ``width`` px wide and ``grow`` px of margin each side."""
    return 0.5 * max(float(width), 1.0) + FRINGE + max(float(grow), 0.0)


def mask_thickness(width: float, grow: float) -> float:
    """The mask's width (px) across a wire ``width`` px wide with ``grow`` px of margin each side."""
    return round(2.0 * half_width(width, grow), 2)


def carry_spread(fit: WireFit) -> float:
    """The margin (px each side) a carried curve's mask gains for the frames it has been carried (module doc)."""
    return min(CARRY_SPREAD * fit.carried_for, CARRY_SPREAD_MAX)


def end_spread(fit: WireFit, shape: tuple[int, int]) -> float:
    """The most a wire's mask widens past its seen span in this frame (px each side; see the module doc)."""
    return END_SPREAD_MAX if seen_share(fit, shape) >= SEEN_ENOUGH else 0.0


def draw_wire(mask: np.ndarray, fit: WireFit, grow: float) -> None:
    """Draw one wire into ``mask`` (H, W) uint8 in place (255 = wire): every pixel whose centre lies
    within ``half_width`` of the curve (distance across the curve, sub-pixel) over its span, plus
    the end spread past the span where the wire was seen, and the carry spread where it was not found."""
    half = half_width(fit.width, grow) + carry_spread(fit)
    curve = fit.curve
    along = curve.samples(step=2.0)
    points = curve.xy(along)
    if len(points) < 2 or not np.isfinite(points).all():
        return
    h, w = mask.shape
    spread = end_spread(fit, (h, w))
    # keep coordinates in cv2's int range: clip far-off points to a generous box around the frame
    points = np.clip(points, [-2 * w, -2 * h], [3 * w, 3 * h])
    pts = np.rint(points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    band = np.zeros_like(mask)  # the pixels worth measuring: a band around the curve, wider past the seen span
    pieces = [(pts, half)]
    if spread > 0:
        ends = (along <= fit.seen[0], along >= fit.seen[1])
        pieces += [(pts[part], half + spread) for part in ends if part.sum() >= 2]
    pad = 0
    for piece, reach in pieces:
        thickness = 2 * int(np.ceil(reach)) + 3
        pad = max(pad, thickness)
        cv2.polylines(band, [piece], False, 255, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT)
    # the band's pixels, searched only in the box around the curve's points (a wire tilted across the
    # frame fills it; a short or level one a strip of it)
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int) - pad, 0, [w, h])
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int) + pad + 1, 0, [w, h])
    ys, xs = np.nonzero(band[y0:y1, x0:x1])
    if not len(xs):
        return
    ys, xs = ys + y0, xs + x0
    uv = curve.axes.to_uv(np.stack([xs, ys], axis=1).astype(np.float64))
    u = uv[:, 0]
    across = np.abs(uv[:, 1] - curve.v(u)) / np.sqrt(1.0 + curve.slope(u) ** 2)
    beyond = np.maximum(0.0, np.maximum(fit.seen[0] - u, u - fit.seen[1]))
    reach = half + np.minimum(spread, END_SPREAD * beyond)
    keep = (across <= reach) & (u >= curve.start - half) & (u <= curve.end + half)
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
