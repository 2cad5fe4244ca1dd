"""The classic engine: no learned weights, CPU only.

Pipeline (all at processing size):

1. ``flow``: Telea pre-fill of the flow mask (so the object does not drag the flow),
   then OpenCV DIS (or Farneback) flow forward ``t -> t+1`` and backward ``t+1 -> t``.
2. ``complete``: the flow inside each frame's flow mask, widened by a margin where
   the estimator still sees the pre-fill, is replaced by the membrane (harmonic)
   interpolation of the flow around it; then a masked Lucas-Kanade pass re-aligns
   the mask and its surroundings using only pixels known in both frames.
3. ``propagate``: every masked pixel, and a one-pixel ring around the mask, follows
   the chained flow to the nearest frames (both directions) that show it; the
   candidates are fused by frame distance. The ring's residual against the true
   pixels is spread into the mask harmonically (Poisson blending), which removes
   seams from exposure changes and small misalignments.
4. ``spatial``: pixels no frame shows are carried from the previous output frame
   along the flow where possible and Telea-inpainted otherwise (steady over time).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..config import InpaintConfig
from ..flow.classic import complete_flows, estimate_flows, prefill_grey, refine_flows
from ..pipeline.propagation import propagate_tracks
from ..pipeline.spatial_fill import SolverCache, fill_unseen, telea_fill
from ..pipeline.stages import Stages
from .base import EngineInput

_SQUARE = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _dilate(masks: np.ndarray, iterations: int, kernel: np.ndarray = _CROSS) -> np.ndarray:
    """(T, H, W) bool grown by ``iterations`` pixels."""
    if iterations <= 0:
        return masks.copy()
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel, iterations=iterations) > 0 for m in masks])


class ClassicEngine:
    """Flow-guided propagation with classical flow; see the module docstring.

    Args:
        max_hops: farthest frame distance a pixel is fetched from, per direction.
        completion_margin: pixels added around the flow mask before harmonic flow completion (the
            estimator's flow is unreliable that close to the pre-filled region).
        refine_iterations: masked Lucas-Kanade iterations (0 disables the pass).
        refine_margin: pixels around the flow mask the Lucas-Kanade pass may change.
        alpha2: per-hop forward-backward bound (px^2, see ``fb_consistency``); inside completed regions
            both flows are interpolated and agree by construction, so the default trusts every hop.
        known_below: a source point is usable when the bilinear mask value there is below this.
        residual_clip: bound (in [0, 1] colour units) on the ring residual spread into the mask, so
            a single misregistered edge cannot tint the whole fill.
        telea_radius: Telea neighbourhood in pixels.
    """

    name = "classic"

    def __init__(self, max_hops: int = 24, completion_margin: int = 6, refine_iterations: int = 3,
                 refine_margin: int = 8, alpha2: float = float("inf"), known_below: float = 0.3,
                 residual_clip: float = 0.15, telea_radius: int = 3):
        self.max_hops = max_hops
        self.completion_margin = completion_margin
        self.refine_iterations = refine_iterations
        self.refine_margin = refine_margin
        self.alpha2 = alpha2
        self.known_below = known_below
        self.residual_clip = residual_clip
        self.telea_radius = telea_radius

    def run(self, inp: EngineInput, config: InpaintConfig, stages: Stages) -> np.ndarray:
        """Fill ``inp.masks``; returns (T, H, W, 3) float32 in [0, 1], equal to the input outside the masks."""
        frames = np.ascontiguousarray(inp.frames, dtype=np.float32)  # (T, H, W, 3) [0, 1]
        masks = np.asarray(inp.masks, dtype=bool)  # (T, H, W)
        flow_masks = np.asarray(inp.flow_masks, dtype=bool) | masks
        t_len = inp.length
        if t_len == 1 or not masks.any():
            with stages("spatial", total=t_len) as bar:
                out = np.stack([telea_fill(f, m, self.telea_radius) for f, m in zip(frames, masks, strict=True)])
                bar.update(t_len)
            return out

        cache = SolverCache()
        with stages("flow", total=t_len - 1) as bar:
            grey = prefill_grey(frames, flow_masks, self.telea_radius)
            flows_f, flows_b = estimate_flows(grey, config.classic_flow, progress=bar.update)
        with stages("complete", total=t_len) as bar:
            holes = _dilate(flow_masks, self.completion_margin)
            flows_f, flows_b = complete_flows(flows_f, flows_b, holes, cache, progress=bar.update)
            if self.refine_iterations > 0:
                plain_grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
                flows_f, flows_b = refine_flows(plain_grey, flows_f, flows_b, flow_masks,
                                                _dilate(flow_masks, self.refine_margin), self.refine_iterations)
        with stages("propagate", total=t_len) as bar:
            out, seen = self._propagate(frames, masks, flows_f, flows_b, cache, bar.update)
        with stages("spatial", total=t_len) as bar:
            out = fill_unseen(out, masks & ~seen, flows_b, self.telea_radius, progress=bar.update)
        return np.where(masks[..., None], np.clip(out, 0.0, 1.0), frames)

    def _propagate(self, frames: np.ndarray, masks: np.ndarray, flows_f: np.ndarray, flows_b: np.ndarray,
                   cache: SolverCache, progress: Callable[[], None]) -> tuple[np.ndarray, np.ndarray]:
        """Frames with the masked pixels some frame shows filled, and that (T, H, W) bool ``seen`` mask."""
        ring = _dilate(masks, 1, _SQUARE) & ~masks
        tracked = propagate_tracks(frames, masks, flows_f, flows_b, targets=masks | ring, max_hops=self.max_hops,
                                   alpha2=self.alpha2, known_below=self.known_below)
        out = frames.copy()
        seen = tracked.seen & masks
        for t in range(frames.shape[0]):
            hole, shown = masks[t], seen[t]
            if shown.any():
                out[t][shown] = tracked.colours[t][shown]
                known_ring = ring[t] & tracked.seen[t]
                if known_ring.any():
                    # Poisson blending: spread the ring's (clipped) residual over the hole
                    residual = np.zeros_like(frames[t])
                    diff = frames[t][known_ring] - tracked.colours[t][known_ring]
                    residual[known_ring] = np.clip(diff, -self.residual_clip, self.residual_clip)
                    out[t][shown] += cache.get(hole).fill(residual)[shown]
            progress()
        return out, seen
