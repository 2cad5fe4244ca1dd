"""Temporal smoothing of a wire's fitted curves.

Each frame's curve is fitted on its own, so it jitters by the fit's error (median 0.1-0.2 px,
more where the wire is faint). A local quadratic in time (Savitzky-Golay) through the
curves of the ``radius`` frames either side, evaluated at the same ``u``, removes most of
that jitter without lagging a swaying wire (a quadratic follows a sway's turn; a plain
average would cut its peaks).

Only tracked frames are smoothed and used: a run of tracked frames is cut at frames
carried from a neighbour, out of the frame or keyed (a keyframe's curve is the user's, kept
as fitted, and tracks from two keys are not mixed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .curve import fit_curve
from .track import WireFit

ORDER = 2  # of the local polynomial in time
GRID_STEP = 4.0  # px along u


def _runs(fits: Sequence[WireFit], keys: set[int]) -> list[range]:
    """Maximal runs of consecutive tracked, unkeyed frames."""
    runs, start = [], None
    for t, f in enumerate(list(fits) + [None]):
        ok = f is not None and not f.carried and np.isfinite(f.confidence) and t not in keys
        if ok and start is None:
            start = t
        elif not ok and start is not None:
            runs.append(range(start, t))
            start = None
    return runs


def _weights(offsets: np.ndarray) -> np.ndarray:
    """Weights giving the value at offset 0 of the least-squares polynomial (degree <= ORDER) through
    samples at integer ``offsets``."""
    degree = min(ORDER, len(offsets) - 1)
    basis = np.vander(offsets.astype(np.float64), degree + 1, increasing=True)
    return np.linalg.pinv(basis)[0]


def smooth_fits(fits: Sequence[WireFit], keys: Sequence[int] = (), radius: int = 2) -> list[WireFit]:
    """Smoothed copies of one wire's per-frame fits (same length; other frames unchanged).

    Args:
        fits: the wire's fits, one per frame (``clip.track_wire``).
        keys: frame indices of its keyframes (kept as fitted; runs are cut there).
        radius: frames either side (0: no smoothing).
    """
    out = list(fits)
    if radius <= 0:
        return out
    for run in _runs(fits, set(keys)):
        if len(run) < 3:
            continue
        for t in run:
            lo, hi = max(run.start, t - radius), min(run.stop - 1, t + radius)
            offsets = np.arange(lo, hi + 1) - t
            w = _weights(offsets)
            c = fits[t].curve
            grid = np.linspace(c.lo, c.hi, max(8, int((c.hi - c.lo) / GRID_STEP)))
            v = sum(wk * fits[t + k].curve.v(grid) for wk, k in zip(w, offsets, strict=True))
            curve = fit_curve(c.axes, grid, v, np.ones_like(grid), c.start, c.end, c.lo, c.hi)
            out[t] = replace(fits[t], curve=curve)
    return out
