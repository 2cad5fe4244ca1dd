"""The classic engine: no learned weights, CPU only.

Everything runs at processing size. The *hole* is the user's mask grown by ``source_margin`` pixels (and
kept inside the dilated mask); the rest of the dilated mask is real footage and is kept, so it serves as a
source and as the border of every fill.

1. ``flow``: per frame, the grey image (at ``flow_scale``) with its flow mask Telea-filled, so the object
   does not drag the flow; OpenCV DIS (or Farneback) forward ``t -> t+1`` and backward ``t+1 -> t``.
2. ``complete``: inside the flow mask (grown by ``completion_margin``, where DIS still sees the pre-fill)
   the flow is replaced by its push-pull interpolation, a coarse-to-fine local average of the flow around
   the mask: across a thin wire each side's flow meets in the middle, so a mover crossing the wire does
   not drag its motion along it (the membrane interpolation did). An optional masked Lucas-Kanade pass
   re-aligns the flow around the mask.
3. ``propagate``: every hole pixel (and, in the last pass, a one-pixel ring around the hole) follows the
   chained flow to the nearest frames, both directions, that show it; candidates are fused with weights
   ``1 / hops ** hop_power``. The ring's residual against the true pixels is spread into the hole
   (push-pull), which removes seams from exposure changes and small misalignments.
4. ``spatial``: pixels no frame shows are Telea-inpainted (their border now mostly propagated pixels).
5. Passes 2..``passes``: the flow is measured again on the previous pass's output, where the object is
   gone (no pre-fill, no completion, better flow at the hole), and steps 3-4 run again.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..config import InpaintConfig
from ..flow.classic import complete_flows, estimate_flows, prefill_grey, refine_flows, resize_flows, shrink_mask
from ..pipeline.spatial_fill import fill_unseen, push_pull_fill, telea_fill
from ..pipeline.stages import Stages
from ..pipeline.tracks import propagate_tracks
from ..samples import unit_frames
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
        source_margin: pixels added around the user's mask to make the hole (the pixels that are filled and
            never used as a source); the rest of the dilated mask keeps the footage.
        flow_scale: resolution of the first pass's flow relative to the processing size, in (0, 1]; None:
            shrink so that the longer side is at most ``flow_max_side`` pixels.
        flow_max_side: see ``flow_scale`` (the flow needs detail only near the mask).
        flow_preset: DIS preset ('ultrafast', 'fast', 'medium').
        completion_margin: low-res pixels added around the flow mask before flow completion.
        refine_iterations: masked Lucas-Kanade iterations of ``use_refinement``.
        refine_margin: pixels around the flow mask the Lucas-Kanade pass may change.
        alpha1, alpha2: per-hop forward-backward bound (see ``fb_consistency``; ``alpha2`` in px^2).
        known_below: a source point is usable when the bilinear hole value there is below this.
        residual_clip: bound (in [0, 1] colour units) on the ring residual spread into the hole, so a
            single misregistered edge cannot tint the whole fill.
        telea_radius: Telea neighbourhood in pixels.
        use_flow_completion: interpolate the flow inside the flow mask (False: the estimator's flow on the
            pre-filled frames is used as is).
        use_refinement: masked Lucas-Kanade refinement of the flow around the mask.
        use_propagation: fetch pixels from other frames (False: spatial fill only).
        use_blending: spread the ring residual into the propagated fill.
        temporal_spatial_fill: carry unseen pixels from the previous output frame along the flow before
            Telea (off by default: on the harness the carried values drift and cost 1-4 dB).
        passes: fill passes; each pass after the first re-measures the flow on the previous pass's output
            (where the object is gone, so no pre-fill or completion is needed) and propagates again.
        repass_scale, repass_preset: flow resolution (None: as ``flow_scale=None``) and DIS preset of those
            later passes.
    """

    name = "classic"

    def __init__(self, max_hops: int = 8, source_margin: int = 0, flow_scale: float | None = 1.0,
                 flow_max_side: int = 448,
                 flow_preset: str = "medium", completion_margin: int = 6, refine_iterations: int = 2,
                 refine_margin: int = 6, alpha1: float = 0.01, alpha2: float = 0.5, known_below: float = 0.01,
                 residual_clip: float = 0.15, telea_radius: int = 3, use_flow_completion: bool = True,
                 use_refinement: bool = False, use_propagation: bool = True, use_blending: bool = True,
                 temporal_spatial_fill: bool = False, passes: int = 3, repass_scale: float | None = None,
                 repass_preset: str = "medium", hop_power: float = 2.0, unseen_from_input: bool = False):
        self.max_hops = max_hops
        self.source_margin = source_margin
        self.flow_scale = flow_scale
        self.flow_max_side = flow_max_side
        self.flow_preset = flow_preset
        self.completion_margin = completion_margin
        self.refine_iterations = refine_iterations
        self.refine_margin = refine_margin
        self.alpha1 = alpha1
        self.alpha2 = alpha2
        self.known_below = known_below
        self.residual_clip = residual_clip
        self.telea_radius = telea_radius
        self.use_flow_completion = use_flow_completion
        self.use_refinement = use_refinement
        self.use_propagation = use_propagation
        self.use_blending = use_blending
        self.temporal_spatial_fill = temporal_spatial_fill
        self.passes = passes
        self.hop_power = hop_power
        self.unseen_from_input = unseen_from_input
        self.repass_scale = repass_scale
        self.repass_preset = repass_preset

    def holes(self, inp: EngineInput) -> np.ndarray:
        """(T, H, W) bool: the pixels this engine fills (the user's mask grown by ``source_margin``)."""
        masks = np.asarray(inp.masks, dtype=bool)
        raw = np.asarray(inp.raw_masks, dtype=bool)
        return _dilate(raw, self.source_margin, _SQUARE) & masks

    def run(self, inp: EngineInput, config: InpaintConfig, stages: Stages, on_final=None) -> np.ndarray:
        """Fill the holes; returns (T, H, W, 3) float32 in [0, 1], equal to the input outside them."""
        frames = unit_frames(inp.frames)  # (T, H, W, 3) float32 [0, 1]
        holes = self.holes(inp)  # (T, H, W)
        flow_masks = np.asarray(inp.flow_masks, dtype=bool) | holes
        t_len = inp.length
        temporal = self.use_propagation or self.temporal_spatial_fill
        if t_len == 1 or not holes.any() or not temporal:
            with stages("spatial", total=t_len) as bar:
                out = np.stack([telea_fill(f, m, self.telea_radius) for f, m in zip(frames, holes, strict=True)])
                bar.update(t_len)
            return out

        h, w = inp.size
        with stages("flow", total=t_len - 1) as bar:
            grey = prefill_grey(frames, flow_masks, self.telea_radius, self._scale(self.flow_scale, h, w))
            flows_f, flows_b = estimate_flows(grey, config.classic_flow, bar.update, self.flow_preset)
        with stages("complete", total=t_len) as bar:
            if self.use_flow_completion:
                size = grey.shape[2], grey.shape[1]
                small = np.stack([shrink_mask(m, size) for m in flow_masks])
                margin = int(round(self.completion_margin * size[0] / w))  # in flow-grid pixels
                flows_f, flows_b = complete_flows(flows_f, flows_b, _dilate(small, margin),
                                                  progress=bar.update, solver="push-pull")
            flows_f, flows_b = resize_flows(flows_f, h, w), resize_flows(flows_b, h, w)
            if self.use_refinement and self.refine_iterations > 0:
                plain = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
                flows_f, flows_b = refine_flows(plain, flows_f, flows_b, flow_masks,
                                                _dilate(flow_masks, self.refine_margin), self.refine_iterations)
        passes = self.passes if self.use_propagation else 1
        out = self._fill_pass(frames, holes, flows_f, flows_b, stages, final=passes == 1)
        no_holes = np.zeros_like(holes)
        for k in range(1, passes):
            # the flow of the filled clip no longer sees the object: re-measure it there, fill again
            with stages("flow", total=t_len - 1) as bar:
                grey = prefill_grey(out, no_holes, self.telea_radius, self._scale(self.repass_scale, h, w))
                flows_f, flows_b = estimate_flows(grey, config.classic_flow, bar.update, self.repass_preset)
                flows_f, flows_b = resize_flows(flows_f, h, w), resize_flows(flows_b, h, w)
            out = self._fill_pass(frames, holes, flows_f, flows_b, stages, final=k == passes - 1)
        return np.where(holes[..., None], np.clip(out, 0.0, 1.0), frames)

    def _scale(self, scale: float | None, height: int, width: int) -> float:
        """A flow scale, or (None) the one that fits the longer side in ``flow_max_side`` pixels."""
        return scale if scale is not None else min(1.0, self.flow_max_side / max(height, width))

    def _fill_pass(self, frames: np.ndarray, holes: np.ndarray, flows_f: np.ndarray, flows_b: np.ndarray,
                   stages: Stages, final: bool = True) -> np.ndarray:
        """One propagation + spatial fill with the given flows; (T, H, W, 3) float32.

        Only the ``final`` pass blends (the earlier ones just feed the next flow estimate).
        """
        t_len = frames.shape[0]
        seen = np.zeros_like(holes)
        out = frames.copy()
        if self.use_propagation:
            with stages("propagate", total=t_len) as bar:
                out, seen = self._propagate(frames, holes, flows_f, flows_b, bar.update, final and self.use_blending)
        with stages("spatial", total=t_len) as bar:
            if self.unseen_from_input:
                # Telea over the whole hole of the input (its border is real footage, not propagated pixels)
                spatial = np.stack([telea_fill(f, m, self.telea_radius) for f, m in zip(frames, holes, strict=True)])
                out = np.where((holes & ~seen)[..., None], spatial, out)
                seen = holes.copy()
            out = fill_unseen(out, holes & ~seen, flows_b if self.temporal_spatial_fill else None,
                              self.telea_radius, progress=bar.update)
        return out

    def _propagate(self, frames: np.ndarray, holes: np.ndarray, flows_f: np.ndarray, flows_b: np.ndarray,
                   progress: Callable[[], None], blend: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Frames with the hole pixels some frame shows filled, and that (T, H, W) bool ``seen`` mask."""
        ring = _dilate(holes, 1, _SQUARE) & ~holes if blend else np.zeros_like(holes)
        tracked = propagate_tracks(frames, holes, flows_f, flows_b, targets=holes | ring, max_hops=self.max_hops,
                                   alpha1=self.alpha1, alpha2=self.alpha2, known_below=self.known_below,
                                   hop_power=self.hop_power)
        out = frames.copy()
        seen = tracked.seen & holes
        for t in range(frames.shape[0]):
            shown = seen[t]
            if shown.any():
                out[t][shown] = tracked.colours[t][shown]
                known_ring = ring[t] & tracked.seen[t]
                if known_ring.any():
                    # blending: spread the ring's (clipped) residual over the hole, coarse to fine
                    residual = np.zeros_like(frames[t])
                    diff = frames[t][known_ring] - tracked.colours[t][known_ring]
                    residual[known_ring] = np.clip(diff, -self.residual_clip, self.residual_clip)
                    y0, y1, x0, x1 = _box(holes[t] | known_ring, 2)
                    spread = push_pull_fill(residual[y0:y1, x0:x1], known_ring[y0:y1, x0:x1])
                    out[t, y0:y1, x0:x1][shown[y0:y1, x0:x1]] += spread[shown[y0:y1, x0:x1]]
            progress()
        return out, seen


def _box(mask: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) bounding box of a non-empty (H, W) bool mask, grown by ``pad`` and clamped."""
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    h, w = mask.shape
    return max(0, ys[0] - pad), min(h, ys[-1] + 1 + pad), max(0, xs[0] - pad), min(w, xs[-1] + 1 + pad)
