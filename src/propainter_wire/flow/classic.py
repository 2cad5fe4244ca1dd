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

from ..pipeline.spatial_fill import SolverCache, push_pull_fill, to_uint8

FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class FlowEstimator:
    """Dense two-frame flow on grey uint8 images.

    Args:
        method: 'dis' (OpenCV DIS) or 'farneback'.
        preset: DIS preset, 'ultrafast', 'fast' or 'medium'.
    """

    def __init__(self, method: str = "dis", preset: str = "medium"):
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method '{method}' (choose from {', '.join(FLOW_METHODS)})")
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset '{preset}' (choose from {', '.join(DIS_PRESETS)})")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset]) if method == "dis" else None

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Flow of ``src`` towards ``dst``: (H, W) uint8 each -> (H, W, 2) float32 pixels."""
        if self._dis is not None:
            return self._dis.calc(src, dst, None)
        return cv2.calcOpticalFlowFarneback(src, dst, None, pyr_scale=0.5, levels=4, winsize=15, iterations=3,
                                            poly_n=5, poly_sigma=1.2, flags=0)


def shrink_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool -> bool at ``size`` = (width, height): a low-res pixel is masked when it overlaps the mask."""
    if mask.shape[::-1] == tuple(size):
        return np.asarray(mask, dtype=bool).copy()
    return cv2.resize(mask.astype(np.float32), tuple(size), interpolation=cv2.INTER_AREA) > 0


def flow_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(width, height) of the flow grid for frames of ``height`` x ``width`` at ``scale`` in (0, 1]."""
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    return min(width, max(8, int(round(width * scale)))), min(height, max(8, int(round(height * scale))))


def prefill_grey(frames: np.ndarray, holes: np.ndarray, radius: int = 3, scale: float = 1.0) -> np.ndarray:
    """Grey uint8 frames, shrunk by ``scale``, with ``holes`` Telea-filled: the input of flow estimation.

    Args:
        frames: (T, H, W, 3) float in [0, 1].
        holes: (T, H, W) bool.
        radius: Telea radius in (shrunk) pixels.
        scale: in (0, 1]; 1 keeps the size.
    Returns:
        (T, h, w) uint8, ``(w, h) = flow_size(H, W, scale)``.
    """
    t_len, h, w = frames.shape[:3]
    size = flow_size(h, w, scale)
    grey = np.empty((t_len, size[1], size[0]), dtype=np.uint8)
    for t in range(t_len):
        g = cv2.cvtColor(to_uint8(frames[t]), cv2.COLOR_RGB2GRAY)
        if size != (w, h):
            g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
        hole = shrink_mask(holes[t], size)
        if hole.any():
            g = cv2.inpaint(g, hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)
        grey[t] = g
    return grey


def resize_flows(flows: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w, 2) flows in pixels of their grid -> (N, height, width, 2) in pixels of the new grid."""
    n, h, w = flows.shape[:3]
    if (h, w) == (height, width):
        return flows
    factor = np.array([width / w, height / h], np.float32)
    out = np.empty((n, height, width, 2), np.float32)
    for i in range(n):
        out[i] = cv2.resize(flows[i], (width, height), interpolation=cv2.INTER_LINEAR) * factor
    return out


def estimate_flows(grey: np.ndarray, method: str = "dis", progress: Callable[[], None] | None = None,
                   preset: str = "medium") -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flows between consecutive frames.

    Args:
        grey: (T, H, W) uint8.
        method: 'dis' or 'farneback'.
        progress: called once per frame pair.
        preset: DIS preset ('ultrafast', 'fast', 'medium').
    Returns:
        ``(flows_f, flows_b)``, each (T-1, H, W, 2) float32 pixels.
    """
    t, h, w = grey.shape
    estimator = FlowEstimator(method, preset)
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
                   cache: SolverCache | None = None, progress: Callable[[], None] | None = None,
                   solver: str = "harmonic") -> tuple[np.ndarray, np.ndarray]:
    """Complete every flow inside the flow mask of its source frame.

    ``flows_f[t]`` lives on frame ``t`` and ``flows_b[t]`` on frame ``t + 1``, so each frame's hole is
    solved once for the (up to) two flows that start on it.

    Args:
        flows_f, flows_b: (T-1, H, W, 2) pixels.
        flow_masks: (T, H, W) bool.
        cache: factorisations reused across frames (harmonic solver only).
        progress: called once per frame.
        solver: 'harmonic' (membrane interpolation: exact for affine motion, but across a long thin mask it
            carries a mover's flow far along the mask) or 'push-pull' (coarse-to-fine local average, see
            ``push_pull_fill``: each side of a thin mask keeps its own flow; no linear system).
    Returns:
        completed ``(flows_f, flows_b)``, new arrays.
    """
    if solver not in ("harmonic", "push-pull"):
        raise ValueError(f"unknown solver '{solver}' (harmonic or push-pull)")
    cache = cache if cache is not None else SolverCache()
    n = flows_f.shape[0]
    out_f, out_b = flows_f.copy(), flows_b.copy()
    for t in range(n + 1):
        hole = flow_masks[t]
        parts = ([flows_f[t]] if t < n else []) + ([flows_b[t - 1]] if t > 0 else [])
        if hole.any() and parts:
            both = np.concatenate(parts, axis=-1)  # (H, W, 2 or 4)
            filled = cache.get(hole).fill(both) if solver == "harmonic" else push_pull_fill(both, ~hole)
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

