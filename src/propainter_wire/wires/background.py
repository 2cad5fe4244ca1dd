"""The background's motion beside a wire, and the lines that move with it.

A faint wire that has been moving across its background (drifting, swaying, seen with
parallax) does not stop dead against it from one frame to the next; a board's edge, a
sign's border or any other line painted on the background does exactly that. Where the
wire's own last displacement differs from the background's by more than ``min_relative``
px, a candidate that lies where the background line under the last curve has moved to is
not the wire: its response is vetoed there (``Veto``).

The background's displacement across the curve is measured by pyramidal Lucas-Kanade
flow on points either side of the wire, far enough out that the wire is not in their
window.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .curve import Curve
from .stats import median

WINDOW = 11  # px, Lucas-Kanade window
LEVELS = 2  # pyramid levels above the frame (1 level: `s0-3` 99.61 / 95.03 % against 99.82 / 98.80)
AGREE_PX = 1.0  # the two sides' displacements must agree within this to count


def to_uint8(grey: np.ndarray) -> np.ndarray:
    return cv2.convertScaleAbs(grey)


def normal_shift(before: np.ndarray, after: np.ndarray, curve: Curve, u: np.ndarray, offset: float) -> np.ndarray:
    """(N,) the background's displacement (px) along the curve's normals at stations ``u``, from
    ``before`` to ``after`` (uint8 frames), measured ``offset`` px either side; nan where unknown
    (outside the frame, flow lost, the two sides disagree)."""
    h, w = before.shape
    u = np.asarray(u, np.float64)
    centres = curve.xy(u)
    normals = curve.normals(u)
    pts = np.concatenate([centres + offset * normals, centres - offset * normals]).astype(np.float32)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    out = np.full(len(u), np.nan)
    if inside.sum() < 2:
        return out
    moved, status, _ = cv2.calcOpticalFlowPyrLK(before, after, pts[inside].reshape(-1, 1, 2), None,
                                                winSize=(WINDOW, WINDOW), maxLevel=LEVELS)
    d = np.full((len(pts), 2), np.nan)
    ok = status.ravel() == 1
    d[np.flatnonzero(inside)[ok]] = (moved.reshape(-1, 2) - pts[inside])[ok]
    n = len(u)
    side = np.stack([(d[:n] * normals).sum(axis=1), (d[n:] * normals).sum(axis=1)])  # (2, N)
    both = np.isfinite(side).all(axis=0)
    agree = both & (np.abs(side[0] - side[1]) <= AGREE_PX)
    out[agree] = side[:, agree].mean(axis=0)
    return out


@dataclass(frozen=True)
class Veto:
    """Where a line moving with the background lies this frame: (N,) ``v`` at stations ``u`` (nan: no veto)."""

    u: np.ndarray
    v: np.ndarray
    reach: float  # px either side of ``v`` that is vetoed

    def at(self, u: np.ndarray) -> np.ndarray:
        """``v`` of the nearest station to each of (M,) ``u`` (nan beyond half a station spacing)."""
        u = np.asarray(u, np.float64)
        if len(self.u) == 0:
            return np.full(len(u), np.nan)
        i = np.clip(np.searchsorted(self.u, u), 1, len(self.u) - 1) if len(self.u) > 1 else np.zeros(len(u), int)
        if len(self.u) > 1:
            i = np.where(np.abs(self.u[i - 1] - u) < np.abs(self.u[i] - u), i - 1, i)
        spacing = median(np.diff(self.u)) if len(self.u) > 1 else 4.0
        return np.where(np.abs(self.u[i] - u) <= 0.5 * spacing + 1e-6, self.v[i], np.nan)

    def apply(self, response: np.ndarray, u: np.ndarray, v_centre: np.ndarray, centre_col: int) -> np.ndarray:
        """``response`` (N, M) of a strip whose column ``centre_col`` lies at (N,) ``v_centre``, with the
        vetoed columns zeroed."""
        target = self.at(u) - v_centre + centre_col
        cols = np.arange(response.shape[1])[None, :]
        hit = np.abs(cols - target[:, None]) <= self.reach  # nan compares False
        return np.where(hit, 0.0, response)


def make_veto(u: np.ndarray, prev_v: np.ndarray, bg: np.ndarray, own: np.ndarray, bg_last: np.ndarray,
              min_relative: float, reach: float) -> Veto | None:
    """The veto for this frame, or None where nothing is vetoed.

    Args:
        u: (N,) stations; prev_v: (N,) the last curve's ``v`` there.
        bg: (N,) the background's displacement since the last frame (``normal_shift``).
        own, bg_last: (N,) the wire's and the background's displacement over the frame before.
    """
    moving = np.abs(own - bg_last) > min_relative
    v = np.where(moving & np.isfinite(bg), prev_v + bg, np.nan)
    if not np.isfinite(v).any():
        return None
    return Veto(np.asarray(u, np.float64), v, reach)
