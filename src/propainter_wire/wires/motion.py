"""The wire's motion between two frames, chosen by its support along the whole curve.

A per-station search (the strongest response near each station) is fooled where the
wire is faint and something else of its polarity lies near it: a sign's lettering, the
border of a dark band. A motion hypothesis is judged instead by the line response
*along the whole moved curve*: the wire supports it wherever it is visible, while a
distractor lines up with the moved curve over a few stations only (a letter's stroke)
or only under a motion no wire makes (a band's edge that slants against it).

Hypotheses are low-order displacements across the predicted curve,
``d(t) = c0 + c1 * t + c2 * (1 - t**2)`` with ``t`` in [-1, 1] over the stations: a
shift (sway, drift, camera pan), a tilt and a swing of the middle.
``c0`` is searched every pixel over the search radius; ``c1``, ``c2`` every 3 px up to
6 px per frame (a wire swaying 8 px with a 14-frame period moves its middle by at most
3.6 px per frame). The response is first max-filtered over 5 columns, so every
displacement within 2 px of a hypothesis is scored by it; the narrow fit that follows
settles the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SHAPE_STEPS = (-6.0, -3.0, 0.0, 3.0, 6.0)  # px, for c1 and c2
TOLERANCE = 2  # columns either side, of the max filter
CAP = 1.5  # of the running strength: one very strong stretch cannot outvote the rest
SEARCH_STRIDE = 2  # every other station is scored (the wire is smooth over 8 px)
PENALTY = 0.004  # per px of |c0| + |c1| + |c2|, in units of the running strength: ties go to the prediction


@dataclass(frozen=True)
class Motion:
    """The best hypothesis: per-station displacement (N,) px across the curve, and its support
    (mean capped response along the moved curve over the stations inside, in units of the
    running strength; about 1 for a wire fully visible, 0 for none)."""

    shift: np.ndarray
    support: float


def hypotheses(t: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, N) displacements (px) of every hypothesis at (N,) positions ``t`` in [-1, 1], and (K,)
    the size of each (``|c0| + |c1| + |c2|``, px)."""
    c0 = np.arange(-radius, radius + 1, dtype=np.float64)
    c = np.array(SHAPE_STEPS)
    a, b, k = np.meshgrid(c0, c, c, indexing="ij")
    coef = np.stack([a.ravel(), b.ravel(), k.ravel()], axis=1)  # (K, 3)
    basis = np.stack([np.ones_like(t), t, 1.0 - t ** 2])  # (3, N)
    return coef @ basis, np.abs(coef).sum(axis=1)


def curve_support(response: np.ndarray, centre: int, shift: np.ndarray, inside: np.ndarray, ref: float) -> float:
    """Mean capped response (units of ``ref``) along a displaced curve.

    Args:
        response: (N, M) line response of a strip (``ridge.strip_response``), column ``centre`` = offset 0.
        shift: (N,) displacement (px) per station; inside: (N,) bool stations that count.
    """
    if not inside.any() or ref <= 0:
        return 0.0
    wide = _widened(response)
    cols = np.clip(np.rint(centre + shift).astype(int), 0, response.shape[1] - 1)
    values = wide[np.arange(len(cols)), cols][inside]
    return float(np.clip(values / ref, 0.0, CAP).mean())


def _widened(response: np.ndarray) -> np.ndarray:
    kernel = np.ones((1, 2 * TOLERANCE + 1), np.uint8)
    return cv2.dilate(response.astype(np.float32), kernel, borderType=cv2.BORDER_REPLICATE)


def best_motion(response: np.ndarray, centre: int, radius: int, inside: np.ndarray, ref: float) -> Motion | None:
    """The displacement hypothesis with the most support along the curve.

    Args:
        response: (N, M) line response of a strip across the predicted curve; column
            ``centre`` is the prediction, columns ``centre +- radius`` the search.
        inside: (N,) bool, stations inside the frame (at least 3).
        ref: the wire's running strength (grey levels).
    Returns:
        The best ``Motion``, or None with fewer than 3 stations inside.
    """
    idx = np.flatnonzero(inside)
    if len(idx) < 3 or ref <= 0:
        return None
    idx = idx[::SEARCH_STRIDE] if len(idx) >= 6 * SEARCH_STRIDE else idx
    t = np.linspace(-1.0, 1.0, len(response))
    shifts, size = hypotheses(t, radius)  # (K, N)
    score = np.clip(_widened(response)[idx] * np.float32(1.0 / ref), 0.0, CAP)  # (n, M)
    cols = np.clip(np.rint(centre + shifts[:, idx]).astype(np.intp), 0, response.shape[1] - 1)
    support = score[np.arange(len(idx))[None, :], cols].mean(axis=1)  # (K,)
    best = int(np.argmax(support - PENALTY * size))
    return Motion(shifts[best], float(support[best]))


def velocity(recent: Sequence, u: np.ndarray, frames: int) -> np.ndarray:
    """(N,) the wire's motion across it (px/frame) at stations ``u``: the slope of a line in time through
    the curves of the last ``frames`` fits of ``recent`` (oldest first, each with ``curve`` and ``carried``),
    back to the last one carried from a neighbour. A drifting wire keeps its speed; the last motion
    alone, damped, lagged a wire leaving the frame at 3 px a frame by about 1 px a frame, which a
    faint stretch of it could not make up."""
    run = list(recent[-1:])
    for f in reversed(recent[:-1]):
        if f.carried or len(run) >= frames:
            break
        run.append(f)
    if len(run) < 2:
        return np.zeros(len(u))
    v = np.stack([f.curve.v(u) for f in reversed(run)])
    t = np.arange(len(v), dtype=np.float64) - (len(v) - 1) / 2.0
    return (t[:, None] * (v - v.mean(axis=0))).sum(axis=0) / (t * t).sum()
