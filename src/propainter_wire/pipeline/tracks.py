"""Flow-guided propagation by point tracks (the classic engine; numpy, no torch).

Each masked pixel follows the chained flow, frame by frame, in both directions until it
lands on a known pixel; the colour is then sampled once (bilinear) in that source frame,
so chained hops do not blur or round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sample_points(images: np.ndarray, frame: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of a stack of images at sub-pixel points.

    Args:
        images: (T, H, W, C) any dtype (read as float32).
        frame: (N,) int frame index of each point.
        x, y: (N,) float pixel coordinates; clamped to the image.
    Returns:
        (N, C) float32.
    """
    _, h, w, c = images.shape
    flat = images.reshape(-1, c)
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(x.astype(np.int64), w - 2) if w > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(y.astype(np.int64), h - 2) if h > 1 else np.zeros(y.shape, np.int64)
    fx = (x - x0).astype(np.float32)[:, None]
    fy = (y - y0).astype(np.float32)[:, None]
    dx = 1 if w > 1 else 0
    dy = w if h > 1 else 0
    base = (frame.astype(np.int64) * h + y0) * w + x0
    # ``take`` along the row axis gathers (N, C) rows several times faster than fancy indexing
    top = flat.take(base, axis=0) * (1 - fx) + flat.take(base + dx, axis=0) * fx
    bottom = flat.take(base + dy, axis=0) * (1 - fx) + flat.take(base + dy + dx, axis=0) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


@dataclass
class TrackedFill:
    """Result of ``propagate_tracks`` for the requested pixels.

    Attributes:
        colours: (T, H, W, C) float32, the fused colour where ``seen`` (zeros elsewhere).
        seen: (T, H, W) bool, pixels some other frame shows.
        hops: (T, H, W) int16, temporal distance of the nearest source (0 where not seen).
        spread: (T, H, W) float32, mean absolute difference (colour units) of the forward and backward
            candidates where both directions found one, else 0.
    """

    colours: np.ndarray
    seen: np.ndarray
    hops: np.ndarray
    spread: np.ndarray | None = None


def _track(frames: np.ndarray, unknown: np.ndarray, along: np.ndarray, back: np.ndarray, frame: np.ndarray,
           x: np.ndarray, y: np.ndarray, step: int, max_hops: int, alpha1: float, alpha2: float,
           known_below: float) -> tuple[np.ndarray, np.ndarray]:
    """Follow points from their frame in one direction (``step`` = +1 or -1) until they reach a known pixel.

    ``along[i]`` is the flow from frame ``i`` (step +1) or ``i + 1`` (step -1) to the next frame in the
    direction of travel; ``back[i]`` its reverse. Returns the sampled colours (N, C) and hop counts (N,),
    0 where no source was found.
    """
    t_len, h, w, _ = frames.shape
    n = x.size
    colours = np.zeros((n, frames.shape[-1]), dtype=np.float32)
    hops = np.zeros(n, dtype=np.int16)
    live = np.arange(n)
    cur, px, py = frame.astype(np.int64).copy(), x.astype(np.float32).copy(), y.astype(np.float32).copy()
    for k in range(1, max_hops + 1):
        nxt = cur + step
        keep = (nxt >= 0) & (nxt < t_len)
        live, cur, nxt, px, py = live[keep], cur[keep], nxt[keep], px[keep], py[keep]
        if live.size == 0:
            break
        pair = cur if step > 0 else nxt  # index of the flow pair between cur and nxt
        f = sample_points(along, pair, px, py)
        qx, qy = px + f[:, 0], py + f[:, 1]
        r = sample_points(back, pair, qx, qy)
        err = np.square(f + r).sum(1)
        bound = alpha1 * (np.square(f).sum(1) + np.square(r).sum(1)) + alpha2
        keep = (err < bound) & (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        live, nxt, qx, qy = live[keep], nxt[keep], qx[keep], qy[keep]
        hit = sample_points(unknown, nxt, qx, qy)[:, 0] < known_below
        colours[live[hit]] = sample_points(frames, nxt[hit], qx[hit], qy[hit])
        hops[live[hit]] = k
        miss = ~hit
        live, cur, px, py = live[miss], nxt[miss], qx[miss], qy[miss]
    return colours, hops


def propagate_tracks(frames: np.ndarray, unknown: np.ndarray, flows_f: np.ndarray, flows_b: np.ndarray,
                     targets: np.ndarray | None = None, max_hops: int = 24, alpha1: float = 0.01,
                     alpha2: float = 0.5, known_below: float = 0.01, hop_power: float = 1.0) -> TrackedFill:
    """Colours for masked pixels from the nearest frames that show them, both directions fused.

    Args:
        frames: (T, H, W, C) float32, any range.
        unknown: (T, H, W) bool, pixels that cannot serve as a source.
        flows_f: (T-1, H, W, 2) pixels, ``t -> t+1`` (completed inside the masks).
        flows_b: (T-1, H, W, 2) pixels, ``t+1 -> t``.
        targets: (T, H, W) bool, pixels to estimate; ``unknown`` when None.
        max_hops: farthest frame distance searched in each direction.
        alpha1, alpha2: forward-backward consistency bound per hop (see ``fb_consistency``).
        known_below: a source point is usable when the bilinear ``unknown`` there is below this.
        hop_power: where both directions find a source the colours are averaged with weights
            ``1 / hops ** hop_power`` (errors of chained flows grow with the distance).
    Returns:
        ``TrackedFill``.
    """
    t_len, h, w, c = frames.shape
    targets = unknown if targets is None else targets
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    unknown_f = np.ascontiguousarray(unknown, dtype=np.uint8)[..., None]  # 0/1, sampled bilinearly
    colours = np.zeros((t_len, h, w, c), dtype=np.float32)
    seen = np.zeros((t_len, h, w), dtype=bool)
    hops = np.zeros((t_len, h, w), dtype=np.int16)
    fi, yi, xi = np.nonzero(targets)
    spread = np.zeros((t_len, h, w), dtype=np.float32)
    if t_len < 2 or fi.size == 0:
        return TrackedFill(colours, seen, hops, spread)
    x, y = xi.astype(np.float32), yi.astype(np.float32)
    col_f, hop_f = _track(frames, unknown_f, flows_f, flows_b, fi, x, y, +1, max_hops, alpha1, alpha2, known_below)
    col_b, hop_b = _track(frames, unknown_f, flows_b, flows_f, fi, x, y, -1, max_hops, alpha1, alpha2, known_below)
    w_f = np.where(hop_f > 0, np.maximum(hop_f, 1) ** -float(hop_power), 0.0).astype(np.float32)
    w_b = np.where(hop_b > 0, np.maximum(hop_b, 1) ** -float(hop_power), 0.0).astype(np.float32)
    total = w_f + w_b
    found = total > 0
    fused = (col_f * w_f[:, None] + col_b * w_b[:, None]) / np.maximum(total, 1e-12)[:, None]
    colours[fi[found], yi[found], xi[found]] = fused[found]
    seen[fi[found], yi[found], xi[found]] = True
    nearest = np.where((hop_f > 0) & ((hop_f <= hop_b) | (hop_b == 0)), hop_f, hop_b)
    hops[fi, yi, xi] = nearest
    both = (hop_f > 0) & (hop_b > 0)
    spread[fi[both], yi[both], xi[both]] = np.abs(col_f[both] - col_b[both]).mean(1)
    return TrackedFill(colours, seen, hops, spread)
