"""Spatial filling: membrane (harmonic) interpolation and Telea inpainting.

``HarmonicSolver`` solves the discrete Laplace equation inside a hole with the
pixels around it as Dirichlet values (4-neighbourhood, Neumann at the image
border). A constant or linear field is reproduced exactly, which makes it the
unbiased way to complete a flow field or to spread a colour correction across a
hole (Poisson blending of a patch = patch + harmonic fill of the border residual).
``telea_fill`` wraps ``cv2.inpaint`` for colour images in [0, 1].
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))


class HarmonicSolver:
    """Factorised Laplace problem for one hole; ``fill`` reuses it for any number of channels.

    Args:
        hole: (H, W) bool, True where values are unknown.
    """

    def __init__(self, hole: np.ndarray):
        hole = np.asarray(hole, dtype=bool)
        if hole.ndim != 2:
            raise ValueError(f"hole must be (H, W), got {hole.shape}")
        self.hole = hole
        h, w = hole.shape
        ys, xs = np.nonzero(hole)
        n = ys.size
        self.size = n
        self._lu = None
        self._border = None  # (n, H*W) sparse: sums the known neighbours of each unknown
        if n == 0:
            return
        index = np.full((h, w), -1, dtype=np.int64)
        index[ys, xs] = np.arange(n)
        rows = np.arange(n)
        degree = np.zeros(n, dtype=np.float64)
        a_rows, a_cols, b_rows, b_cols = [], [], [], []
        for dy, dx in _OFFSETS:
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
            degree += inside
            r, ny, nx = rows[inside], ny[inside], nx[inside]
            nb = index[ny, nx]
            unknown = nb >= 0
            a_rows.append(r[unknown])
            a_cols.append(nb[unknown])
            b_rows.append(r[~unknown])
            b_cols.append(ny[~unknown] * w + nx[~unknown])
        b_rows_all, b_cols_all = np.concatenate(b_rows), np.concatenate(b_cols)
        if b_rows_all.size == 0:
            return  # the whole image is a hole: nothing to interpolate from
        a_r = np.concatenate([rows] + a_rows)
        a_c = np.concatenate([rows] + a_cols)
        a_v = np.concatenate([degree, -np.ones(a_r.size - n)])
        lap = sp.csc_matrix((a_v, (a_r, a_c)), shape=(n, n))
        self._lu = splu(lap, permc_spec="MMD_AT_PLUS_A")
        self._border = sp.csr_matrix((np.ones(b_rows_all.size), (b_rows_all, b_cols_all)), shape=(n, h * w))

    def fill(self, values: np.ndarray, fallback: float = 0.0) -> np.ndarray:
        """Replace the hole of ``values`` by the membrane interpolation of the pixels around it.

        Args:
            values: (H, W) or (H, W, C) any range; values inside the hole are ignored.
            fallback: the value used when the hole covers the whole image.
        Returns:
            a new array of the same shape, float32.
        """
        out = np.array(values, dtype=np.float32, copy=True)
        if self.size == 0:
            return out
        flat = out.reshape(self.hole.size, -1)
        mask = self.hole.reshape(-1)
        if self._lu is None:
            flat[mask] = fallback
            return out
        rhs = self._border @ flat.astype(np.float64)  # (n, C)
        flat[mask] = self._lu.solve(rhs).astype(np.float32)
        return out


class SolverCache:
    """Keeps the factorisations of the last few holes (a static wire gives the same hole every frame)."""

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self._items: OrderedDict[bytes, HarmonicSolver] = OrderedDict()

    def get(self, hole: np.ndarray) -> HarmonicSolver:
        hole = np.asarray(hole, dtype=bool)
        key = np.packbits(hole).tobytes() + repr(hole.shape).encode()
        solver = self._items.get(key)
        if solver is None:
            solver = HarmonicSolver(hole)
            self._items[key] = solver
            if len(self._items) > self.capacity:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return solver


def harmonic_fill(values: np.ndarray, hole: np.ndarray, cache: SolverCache | None = None) -> np.ndarray:
    """Membrane interpolation of ``values`` into ``hole`` ((H, W) bool); see ``HarmonicSolver.fill``."""
    solver = cache.get(hole) if cache is not None else HarmonicSolver(hole)
    return solver.fill(values)


def push_pull_fill(values: np.ndarray, known: np.ndarray, min_weight: float = 1e-3) -> np.ndarray:
    """Fill the unknown pixels of ``values`` from the known ones, coarse to fine (push-pull).

    The known pixels are repeatedly averaged into a half-size image (Gaussian pyramid of ``values * weight``
    and of ``weight``) until every pixel of the coarsest level has some weight; going back up, each level keeps
    its own normalised average where it has weight and blends in the upsampled coarser level where it has
    little. An unknown pixel thus gets the local average of the known pixels at the scale of its distance to
    them: thin holes are filled from their immediate border only (a mover's value does not spread along a
    long thin hole), wide holes smoothly. O(H W), no linear system.

    Args:
        values: (H, W) or (H, W, C) any range; values at unknown pixels are ignored.
        known: (H, W) bool or float weight in [0, 1] (1 = known).
        min_weight: a level counts as covered where its pooled weight exceeds this.
    Returns:
        float32 array shaped like ``values``; known pixels (weight 1) keep their value.
    """
    vals = np.asarray(values, dtype=np.float32)
    squeeze = vals.ndim == 2
    if squeeze:
        vals = vals[..., None]
    weight = np.asarray(known, dtype=np.float32)
    if weight.min() >= 1.0:
        return np.array(values, dtype=np.float32, copy=True)
    if weight.max() <= 0.0:
        return np.zeros_like(vals[..., 0] if squeeze else vals)
    # push: pyramid of weighted sums, channels last plus the weight as the final channel
    level = np.concatenate([vals * weight[..., None], weight[..., None]], axis=-1)  # (H, W, C + 1)
    pyramid = [level]
    while min(level.shape[:2]) > 1 and level[..., -1].min() <= min_weight:
        level = cv2.pyrDown(level) if level.shape[-1] <= 4 else _pyr_down_many(level)
        if level.ndim == 2:
            level = level[..., None]
        pyramid.append(level)
    # pull: from the coarsest level down, the normalised average blended with the coarser estimate
    estimate = None
    for level in reversed(pyramid):
        w = level[..., -1:]
        mean = level[..., :-1] / np.maximum(w, 1e-12)
        if estimate is None:
            estimate = np.where(w > 0, mean, 0.0).astype(np.float32)
            continue
        up = cv2.resize(estimate, (level.shape[1], level.shape[0]), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        alpha = np.clip(w, 0.0, 1.0)
        estimate = (alpha * mean + (1.0 - alpha) * up).astype(np.float32)
    out = np.where(weight[..., None] >= 1.0, vals, estimate)
    return out[..., 0] if squeeze else out


def _pyr_down_many(image: np.ndarray) -> np.ndarray:
    """``cv2.pyrDown`` of an (H, W, C) image with any number of channels (OpenCV takes at most 4)."""
    parts = [cv2.pyrDown(np.ascontiguousarray(image[..., i:i + 4])) for i in range(0, image.shape[-1], 4)]
    return np.concatenate([p if p.ndim == 3 else p[..., None] for p in parts], axis=-1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 with rounding."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def telea_fill(image: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """Telea inpainting of ``hole`` in a colour image.

    Args:
        image: (H, W, 3) float in [0, 1] (or uint8).
        hole: (H, W) bool.
        radius: neighbourhood radius in pixels.
    Returns:
        (H, W, 3) float32 in [0, 1]; pixels outside the hole are the input's, exactly.
    """
    as_float = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if not hole.any():
        return as_float.copy()
    src = image if image.dtype == np.uint8 else to_uint8(image)
    filled = cv2.inpaint(np.ascontiguousarray(src), hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    out = as_float.copy()
    out[hole] = filled[hole].astype(np.float32) / 255.0
    return out


def fill_unseen(frames: np.ndarray, unseen: np.ndarray, flows_b: np.ndarray | None = None, radius: int = 3,
                progress: Callable[[], None] | None = None) -> np.ndarray:
    """Fill pixels no frame shows, steadily over time.

    Frame by frame, an unseen pixel first takes the already-filled previous frame's value along the
    backward flow (so a fill made once travels with the scene instead of being re-invented, and
    flickering, on every frame); what cannot be carried is Telea-inpainted.

    Args:
        frames: (T, H, W, 3) float32 in [0, 1], everything but ``unseen`` already filled.
        unseen: (T, H, W) bool.
        flows_b: (T-1, H, W, 2) pixels, ``t+1 -> t`` (completed); None fills every frame on its own.
        radius: Telea radius in pixels.
        progress: called once per frame.
    Returns:
        (T, H, W, 3) float32 in [0, 1], a new array.
    """
    from .tracks import sample_points

    out = np.array(frames, dtype=np.float32, copy=True)
    t_len, h, w, _ = out.shape
    for t in range(t_len):
        hole = unseen[t].copy()
        if hole.any() and t > 0 and flows_b is not None:
            ys, xs = np.nonzero(hole)
            prev = np.full(ys.size, t - 1)
            f = sample_points(flows_b, prev, xs.astype(np.float32), ys.astype(np.float32))
            qx, qy = xs + f[:, 0], ys + f[:, 1]
            inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
            out[t, ys[inside], xs[inside]] = sample_points(out, prev[inside], qx[inside], qy[inside])
            hole[ys[inside], xs[inside]] = False
        if hole.any():
            out[t] = telea_fill(out[t], hole, radius)
        if progress is not None:
            progress()
    return out
