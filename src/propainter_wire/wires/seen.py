"""How much of a wire a frame saw, and the frames that saw too little of it.

A fit's ``seen`` span is where responses of the wire were found along it; past it the curve is a
continuation (the fit's end tangent and bend, or the previous frame's shape moved on by the wire's
motion). Where less than ``SEEN_ENOUGH`` of the curve's part inside the frame was seen, the frame's
curve is mostly such a guess: its mask does not widen past the seen span (``render.py``) and the
frame is listed in the report as partly seen. On the generated sets (``quality.wires``, clicks +-2
px, seeds 1 and 2) that listed 17 more of the 52 frames under 97 % coverage that nothing else listed,
and 22 of the 3,549 frames within target; at 0.7 it listed 21 and 47, at 0.8 24 and 135. Night set:
3 more of 77, none within target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .curve import frame_span
from .track import WireFit

SEEN_ENOUGH = 0.6  # share of the curve's part inside the frame


def seen_share(fit: WireFit, shape: tuple[int, int]) -> float:
    """Share (0..1) of ``fit``'s curve inside an (H, W) frame that lies within its seen span; nan when
    the curve is out of the frame."""
    start, end = frame_span(fit.curve, shape[0], shape[1])
    if not np.isfinite(start) or end <= start:
        return float("nan")
    return float(np.clip((min(fit.seen[1], end) - max(fit.seen[0], start)) / (end - start), 0.0, 1.0))


def mark_partly_seen(fits: Sequence[Sequence[WireFit]], shape: tuple[int, int]) -> list[list[WireFit]]:
    """Every wire's fits with ``partly_seen`` set on tracked frames (not carried, in the frame) that saw
    less than ``SEEN_ENOUGH`` of the curve (carried frames are listed already)."""
    out = [list(f) for f in fits]
    for own in out:
        for t, fit in enumerate(own):
            if fit.carried or not np.isfinite(fit.confidence):
                continue
            if seen_share(fit, shape) < SEEN_ENOUGH:
                own[t] = replace(fit, partly_seen=True)
    return out
