"""A wire through a whole clip, from its keyframes (one ``WireTracker`` per key).

The wire is tracked from each key forwards and backwards to the next key. Once the frame after a
key is tracked, the key itself is found again from it (``TrackSettings.revisit_key``). A frame
between two keys blends the two curves with weights falling linearly with the distance to each
key, times each side's confidence; the curves are then smoothed in time (``smooth.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from .curve import Axes, fit_curve
from .points import WireSpec
from .smooth import smooth_fits
from .track import TrackSettings, WireFit, WireTracker


def _run(tracker: WireTracker, grey_at: Callable[[int], np.ndarray], first: WireFit, frames: range
         ) -> dict[int, WireFit]:
    out: dict[int, WireFit] = {}
    prev, before = first, None
    for t in frames:
        fit = tracker.step(grey_at(t), prev, before)
        out[t] = fit
        before, prev = prev, fit
    return out


def _revisit(tracker: WireTracker, grey: np.ndarray, after: WireFit, start: WireFit, points: np.ndarray
             ) -> WireFit | None:
    """The keyframe found again from the frame after it, as any tracked frame is (the whole-curve
    search across the curve there), or None to keep ``start``: when the wire is not found with
    confidence, or the new curve strays farther from the clicks than they may lie from the wire."""
    s = tracker.s
    fit = tracker.step(grey, after, None)
    if fit.carried or not np.isfinite(fit.confidence):
        return None
    uv = fit.curve.axes.to_uv(np.asarray(points, np.float64))
    if np.max(np.abs(fit.curve.v(uv[:, 0]) - uv[:, 1])) > s.click_tolerance:
        return None
    return replace(fit, confidence=1.0, doubtful=False, seen=(min(fit.seen[0], start.seen[0]),
                                                              max(fit.seen[1], start.seen[1])))


def blend_fits(a: WireFit, b: WireFit, wa: float, wb: float) -> WireFit:
    """Weighted blend of two fits of one wire (same axes): ``v`` averaged over the union of their spans."""
    wa = wa * (max(a.confidence, 0.0) if np.isfinite(a.confidence) else 0.5) + 1e-3 * wa
    wb = wb * (max(b.confidence, 0.0) if np.isfinite(b.confidence) else 0.5) + 1e-3 * wb
    start, end = min(a.curve.start, b.curve.start), max(a.curve.end, b.curve.end)
    lo, hi = min(a.curve.lo, b.curve.lo), max(a.curve.hi, b.curve.hi)
    u = np.linspace(lo, hi, max(8, int((hi - lo) / 4.0)))
    v = (wa * a.curve.v(u) + wb * b.curve.v(u)) / (wa + wb)
    curve = fit_curve(a.curve.axes, u, v, np.ones_like(u), start, end, lo, hi)
    width = (wa * a.width + wb * b.width) / (wa + wb)
    conf = np.nanmax([a.confidence, b.confidence]) if np.isfinite([a.confidence, b.confidence]).any() else np.nan
    seen = (min(a.seen[0], b.seen[0]), max(a.seen[1], b.seen[1]))
    carried = a.carried and b.carried
    return WireFit(curve, width, float(conf), carried, max(a.strength, b.strength), seen, a.doubtful and b.doubtful,
                   carried_for=min(a.carried_for, b.carried_for) if carried else 0)


def track_wire(grey_at: Callable[[int], np.ndarray], num_frames: int, spec: WireSpec,
               settings: TrackSettings = TrackSettings(), progress: Callable[[int], None] | None = None
               ) -> list[WireFit]:
    """The wire in every frame of a clip.

    Args:
        grey_at: frame index -> (H, W) float32 grey levels 0..255.
        num_frames: the clip's length.
        spec: the wire's keyframes.
        progress: called with the number of frames just finished.
    Returns:
        One ``WireFit`` per frame.
    """
    axes = Axes.from_points(spec.keys[0].points)
    keys = list(spec.keys)
    starts = {}
    trackers = {}
    for key in keys:
        trackers[key.index] = WireTracker(settings, axes)
        starts[key.index] = trackers[key.index].start(grey_at(key.index), key.points)
        if progress:
            progress(1)
    fits: dict[int, WireFit] = dict(starts)
    for i, key in enumerate(keys):
        prev_key = keys[i - 1].index if i > 0 else -1
        next_key = keys[i + 1].index if i + 1 < len(keys) else num_frames
        tracker = trackers[key.index]
        forward = _run(tracker, grey_at, starts[key.index], range(key.index + 1, next_key))
        if settings.revisit_key and key.index + 1 in forward:
            revisited = _revisit(tracker, grey_at(key.index), forward[key.index + 1], starts[key.index], key.points)
            if revisited is not None:
                starts[key.index] = fits[key.index] = revisited
        backward = _run(tracker, grey_at, starts[key.index], range(key.index - 1, prev_key, -1))
        for t, fit in list(forward.items()) + list(backward.items()):
            if t in fits:  # between two keys: both directions met here
                a, b = (prev_key, key.index) if t < key.index else (key.index, next_key)
                w_self = 1.0 - abs(t - key.index) / (b - a)
                fits[t] = blend_fits(fits[t], fit, 1.0 - w_self, w_self)
            else:
                fits[t] = fit
                if progress:
                    progress(1)
    return smooth_fits([fits[t] for t in range(num_frames)], [k.index for k in keys], settings.smooth_radius)


def low_confidence(fits: Sequence[WireFit]) -> list[int]:
    """Frames to check: carried from a neighbour at low confidence, or tracked but doubtful, on another
    wire's line or seen over too little of the curve."""
    return [t for t, f in enumerate(fits)
            if (f.carried and np.isfinite(f.confidence)) or f.doubtful or f.shared or f.partly_seen]


def fits_report(name: str, fits: Sequence[WireFit]) -> dict:
    """Per-wire summary: frames carried at low confidence, out of the frame, on another wire's line or
    seen over too little of the curve (both also in the low-confidence list), widths (px)."""
    low = low_confidence(fits)
    out = [t for t, f in enumerate(fits) if not np.isfinite(f.confidence)]
    widths = np.array([f.width for f in fits])
    conf = np.array([f.confidence for f in fits], np.float64)
    shared = [t for t, f in enumerate(fits) if f.shared]
    partly = [t for t, f in enumerate(fits) if f.partly_seen]
    return {"name": name, "low_confidence_frames": low, "out_of_frame_frames": out, "shared_line_frames": shared,
            "partly_seen_frames": partly,
            "width_px": {"median": round(float(np.median(widths)), 2), "min": round(float(widths.min()), 2),
                         "max": round(float(widths.max()), 2)},
            "confidence": {"mean": round(float(np.nanmean(conf)), 3) if np.isfinite(conf).any() else None,
                           "min": round(float(np.nanmin(conf)), 3) if np.isfinite(conf).any() else None}}
