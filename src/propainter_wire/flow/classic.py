"""Weight-free optical flow (OpenCV DIS or Farneback) and flow completion inside masks.

Flows here are numpy (H, W, 2) float32 in pixels, x then y, at the size of the
frames they were computed on. ``flows_f[t]`` maps frame ``t`` to ``t + 1`` and
``flows_b[t]`` maps frame ``t + 1`` to ``t`` (both on the grid of their source frame).

The masked object would drag the flow along with it, so frames are pre-filled
(Telea) inside the flow mask before estimation, and the flow there is then
replaced by the membrane interpolation of the flow around the mask.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..pipeline.spatial_fill import SolverCache, telea_fill, to_uint8

FLOW_METHODS = ("dis", "farneback")


class FlowEstimator:
    """Dense two-frame flow on grey uint8 images.

    Args:
        method: 'dis' (OpenCV DIS, medium preset) or 'farneback'.
    """

    def __init__(self, method: str = "dis"):
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method '{method}' (choose from {', '.join(FLOW_METHODS)})")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "dis" else None

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Flow of ``src`` towards ``dst``: (H, W) uint8 each -> (H, W, 2) float32 pixels."""
        if self._dis is not None:
            return self._dis.calc(src, dst, None)
        return cv2.calcOpticalFlowFarneback(src, dst, None, pyr_scale=0.5, levels=4, winsize=15, iterations=3,
                                            poly_n=5, poly_sigma=1.2, flags=0)


def prefill_grey(frames: np.ndarray, holes: np.ndarray, radius: int = 3) -> np.ndarray:
    """Grey uint8 frames with ``holes`` Telea-filled, the input of flow estimation.

    Args:
        frames: (T, H, W, 3) float in [0, 1].
        holes: (T, H, W) bool.
    Returns:
        (T, H, W) uint8.
    """
    grey = np.empty(frames.shape[:3], dtype=np.uint8)
    for t in range(frames.shape[0]):
        rgb = to_uint8(frames[t])
        if holes[t].any():
            rgb = to_uint8(telea_fill(rgb, holes[t], radius))
        grey[t] = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return grey


def estimate_flows(grey: np.ndarray, method: str = "dis",
                   progress: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flows between consecutive frames.

    Args:
        grey: (T, H, W) uint8.
        method: 'dis' or 'farneback'.
        progress: called once per frame pair.
    Returns:
        ``(flows_f, flows_b)``, each (T-1, H, W, 2) float32 pixels.
    """
    t, h, w = grey.shape
    estimator = FlowEstimator(method)
    flows_f = np.zeros((max(t - 1, 0), h, w, 2), dtype=np.float32)
    flows_b = np.zeros_like(flows_f)
    for i in range(t - 1):
        flows_f[i] = estimator(grey[i], grey[i + 1])
        flows_b[i] = estimator(grey[i + 1], grey[i])
        if progress is not None:
            progress()
    return flows_f, flows_b


def complete_flow(flow: np.ndarray, hole: np.ndarray, cache: SolverCache | None = None) -> np.ndarray:
    """Replace the flow inside ``hole`` by the membrane interpolation of the flow around it.

    Unlike ``cv2.inpaint`` this reproduces constant and linear (affine-motion) fields exactly.

    Args:
        flow: (H, W, 2) pixels.
        hole: (H, W) bool.
        cache: reuse factorisations across calls with the same hole.
    Returns:
        (H, W, 2) float32; outside the hole equal to ``flow``.
    """
    cache = cache if cache is not None else SolverCache(capacity=1)
    return cache.get(hole).fill(flow)


def complete_flows(flows_f: np.ndarray, flows_b: np.ndarray, flow_masks: np.ndarray,
                   cache: SolverCache | None = None,
                   progress: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Complete every flow inside the flow mask of its source frame.

    ``flows_f[t]`` lives on frame ``t`` and ``flows_b[t]`` on frame ``t + 1``, so each frame's hole is
    solved once for the (up to) two flows that start on it.

    Args:
        flows_f, flows_b: (T-1, H, W, 2) pixels.
        flow_masks: (T, H, W) bool.
    Returns:
        completed ``(flows_f, flows_b)``, new arrays.
    """
    cache = cache if cache is not None else SolverCache()
    n = flows_f.shape[0]
    out_f, out_b = flows_f.copy(), flows_b.copy()
    for t in range(n + 1):
        hole = flow_masks[t]
        if not hole.any():
            continue
        parts = ([flows_f[t]] if t < n else []) + ([flows_b[t - 1]] if t > 0 else [])
        if not parts:
            continue
        filled = cache.get(hole).fill(np.concatenate(parts, axis=-1))  # (H, W, 2 or 4)
        if t < n:
            out_f[t] = filled[..., :2]
        if t > 0:
            out_b[t - 1] = filled[..., -2:]
        if progress is not None:
            progress()
    return out_f, out_b


def _warp_image(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp (H, W) float32 ``image`` by ``flow`` (H, W, 2): out(x) = image(x + flow(x)), border replicated."""
    h, w = image.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def refine_flow_masked(src: np.ndarray, dst: np.ndarray, flow: np.ndarray, src_hole: np.ndarray,
                       dst_hole: np.ndarray, region: np.ndarray, iterations: int = 3, sigma: float = 5.0,
                       damping: float = 1e-3) -> np.ndarray:
    """Masked Lucas-Kanade refinement of ``flow`` inside ``region``, blind to the holes.

    Each pixel of ``region`` gets the translation that best aligns a Gaussian window (``sigma`` pixels)
    of ``src`` with ``dst`` along the flow, counting only pixels known in both frames; deep inside a
    wide hole, where the window sees no known pixel, the update fades to zero (damping).

    Args:
        src, dst: (H, W) float32 grey in [0, 1].
        flow: (H, W, 2) pixels, ``src -> dst`` (e.g. completed DIS flow).
        src_hole, dst_hole: (H, W) bool, unknown pixels of each frame.
        region: (H, W) bool, where the flow may change.
    Returns:
        (H, W, 2) float32.
    """
    flow = flow.astype(np.float32, copy=True)
    if not region.any():
        return flow
    ksize = (0, 0)
    src_known = (~src_hole).astype(np.float32)
    dst_known = (~dst_hole).astype(np.float32)
    for _ in range(iterations):
        warped = _warp_image(dst, flow)
        weight = src_known * (_warp_image(dst_known, flow) > 0.999)
        # mean of both frames' central differences ([-1, 0, 1] / 2), per pixel
        gx = 0.25 * (cv2.Sobel(warped, cv2.CV_32F, 1, 0, ksize=1) + cv2.Sobel(src, cv2.CV_32F, 1, 0, ksize=1))
        gy = 0.25 * (cv2.Sobel(warped, cv2.CV_32F, 0, 1, ksize=1) + cv2.Sobel(src, cv2.CV_32F, 0, 1, ksize=1))
        diff = warped - src
        wgx, wgy = weight * gx, weight * gy
        a11 = cv2.GaussianBlur(wgx * gx, ksize, sigma)
        a12 = cv2.GaussianBlur(wgx * gy, ksize, sigma)
        a22 = cv2.GaussianBlur(wgy * gy, ksize, sigma)
        b1 = cv2.GaussianBlur(wgx * diff, ksize, sigma)
        b2 = cv2.GaussianBlur(wgy * diff, ksize, sigma)
        a11 += damping
        a22 += damping
        det = a11 * a22 - a12 * a12
        du = -(a22 * b1 - a12 * b2) / det
        dv = -(a11 * b2 - a12 * b1) / det
        step = np.clip(np.stack([du, dv], -1), -1.0, 1.0)
        flow[region] += step[region]
    return flow


def refine_flows(grey: np.ndarray, flows_f: np.ndarray, flows_b: np.ndarray, holes: np.ndarray,
                 regions: np.ndarray, iterations: int = 3, sigma: float = 5.0, damping: float = 1e-5,
                 progress: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``refine_flow_masked`` on every forward and backward flow (in place on copies).

    Args:
        grey: (T, H, W) float32 in [0, 1], the frames as given (holes are ignored, not pre-filled).
        flows_f, flows_b: (T-1, H, W, 2) pixels.
        holes: (T, H, W) bool, unknown pixels of each frame.
        regions: (T, H, W) bool, where each frame's outgoing flows may change.
    Returns:
        refined ``(flows_f, flows_b)``.
    """
    out_f, out_b = flows_f.copy(), flows_b.copy()
    for i in range(flows_f.shape[0]):
        out_f[i] = refine_flow_masked(grey[i], grey[i + 1], flows_f[i], holes[i], holes[i + 1], regions[i],
                                      iterations, sigma, damping)
        out_b[i] = refine_flow_masked(grey[i + 1], grey[i], flows_b[i], holes[i + 1], holes[i], regions[i + 1],
                                      iterations, sigma, damping)
        if progress is not None:
            progress()
    return out_f, out_b
