"""Following a wire from frame to frame.

Per frame and wire: stations every ``step`` px along the curve predicted from the
neighbouring frame (the previous curve plus its damped motion: a wire sways on its
own, so its own motion, not the background's, predicts it), the line response of a
strip across the curve (``ridge.strip_response``), the strongest response within
``search_radius`` of each station, then a robust fit (iteratively reweighted least
squares, Tukey's biweight with a shrinking scale) pulled weakly towards the
prediction where nothing was found, and a second, narrow search (``refine_radius``)
around that fit to settle the curve to ~0.3 px.

Confidence is the share of the stations inside the frame where a response of at
least ``found_ratio`` of the wire's running strength lies within ``inlier_px`` of
the fitted curve. Below ``min_confidence`` the frame keeps the curve carried from
its neighbour and is reported.

Several keyframes: the wire is tracked from each key forwards and backwards to the
next key; a frame between two keys blends the two curves with weights falling
linearly with the distance to each key, times each side's confidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .curve import Axes, Curve, fit_curve, frame_span
from .points import WireSpec
from .ridge import BRIGHT, DARK, SIGMAS, peak_offsets, profile_widths, sample_strip, strip_response


@dataclass(frozen=True)
class TrackSettings:
    """Tracking settings (pixels unless stated)."""

    search_radius: int = 14  # per-frame search across the predicted curve; sway up to ~10 px/frame
    refine_radius: int = 3
    key_radius: int = 8  # around a keyframe's clicked polyline (points within ~5 px)
    step: float = 4.0  # between stations along the wire
    flank: int = 10  # strip columns beyond the search, for the filter and the width
    found_ratio: float = 0.3  # of the running strength, for a station to count as found
    inlier_px: float = 2.0
    min_confidence: float = 0.5  # of the stations inside the frame
    prior_weight: float = 0.05  # of the prediction against one found station
    damping: float = 0.6  # of the last frame's motion carried into the prediction
    end_pad: float = 8.0  # the mask runs this far past the last station seen
    key_growth: float = 48.0  # how far each keyframe round reaches past the seen span
    key_rounds: int = 16
    sigmas: tuple[float, ...] = SIGMAS


@dataclass(frozen=True)
class WireFit:
    """A wire in one frame: its curve, width (px), confidence (0..1, nan when out of frame),
    whether the curve was carried from a neighbour, and its response strength (grey levels)."""

    curve: Curve
    width: float
    confidence: float
    carried: bool
    strength: float


@dataclass(frozen=True)
class _Observation:
    u: np.ndarray  # (N,) station positions along the prediction
    v_pred: np.ndarray  # (N,) predicted v there
    uv: np.ndarray  # (N, 2) where the strongest response lies, wire axes
    peak: np.ndarray  # (N,) its response
    inside: np.ndarray  # (N,) bool, station inside the frame
    widths: np.ndarray  # (N,) measured width there (nan: none)


def _observe(grey: np.ndarray, curve: Curve, u: np.ndarray, radius: int, polarity: int, s: TrackSettings,
             shift: np.ndarray | None = None) -> _Observation:
    h, w = grey.shape
    centres = curve.xy(u)
    normals = curve.normals(u)
    if shift is not None:
        centres = centres + shift[:, None] * normals
    half = radius + s.flank
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    strip = sample_strip(grey, centres, normals, offsets)
    response, _ = strip_response(strip, polarity, s.sigmas)
    col, peak = peak_offsets(response, slice(s.flank, s.flank + 2 * radius + 1))
    points = centres + (col - half)[:, None] * normals
    inside = ((centres[:, 0] >= 0) & (centres[:, 0] <= w - 1) & (centres[:, 1] >= 0) & (centres[:, 1] <= h - 1)
              & (points[:, 0] >= 0) & (points[:, 0] <= w - 1) & (points[:, 1] >= 0) & (points[:, 1] <= h - 1))
    widths = profile_widths(strip, col, polarity)
    return _Observation(u, curve.axes.to_uv(centres)[:, 1], curve.axes.to_uv(points), peak.astype(np.float64),
                        inside, widths)


def _robust_fit(obs: _Observation, axes: Axes, ref: float, radius: float, s: TrackSettings
                ) -> tuple[Curve, np.ndarray] | None:
    """IRLS fit of the observation; returns the curve (span unset) and the inlier mask, or None."""
    found = obs.inside & (obs.peak > s.found_ratio * ref)
    if found.sum() < 3:
        return None
    data_w = np.where(found, np.clip(obs.peak / ref, 0.0, 2.0), 0.0)
    u_all = np.concatenate([obs.uv[:, 0], obs.u])
    v_all = np.concatenate([obs.uv[:, 1], obs.v_pred])
    prior = np.full(len(obs.u), s.prior_weight)
    robust = np.ones(len(obs.u))
    # first scale: the distance to the prediction itself, so outliers never steer the first fit
    residual = obs.uv[:, 1] - obs.v_pred
    lo, hi = float(obs.u.min()), float(obs.u.max())
    curve = None
    for scale in (radius, radius / 2, 6.0, 4.0, 3.0, 3.0):
        scale = max(scale, 3.0)
        robust = np.where(np.abs(residual) < scale, (1.0 - (residual / scale) ** 2) ** 2, 0.0)
        weights = np.concatenate([data_w * robust, prior])
        curve = fit_curve(axes, u_all, v_all, weights, 0.0, 0.0, lo, hi)
        residual = obs.uv[:, 1] - curve.v(obs.uv[:, 0])
    inliers = found & (np.abs(residual) < s.inlier_px)
    if inliers.sum() < 3:
        return None
    u_in = obs.uv[inliers, 0]
    lo, hi = float(u_in.min()), float(u_in.max())
    weights = np.concatenate([data_w * robust, prior])
    return fit_curve(axes, u_all, v_all, weights, lo, hi, lo, hi), inliers


def _stations(curve: Curve, shape: tuple[int, int], s: TrackSettings, limit: tuple[float, float] | None = None
              ) -> np.ndarray:
    a, b = frame_span(curve, shape[0], shape[1])
    if not np.isfinite(a):
        return np.empty(0)
    if limit is not None:
        a, b = max(a, limit[0]), min(b, limit[1])
    if b - a < 2 * s.step:
        return np.empty(0)
    return np.arange(a, b + 1e-6, s.step)


def _visible_span(curve: Curve, inliers_u: np.ndarray, shape: tuple[int, int], s: TrackSettings
                  ) -> tuple[float, float]:
    """The inliers' span padded by ``end_pad``; an end near the frame edge runs past the edge."""
    a, b = frame_span(curve, shape[0], shape[1])
    first, last = float(inliers_u.min()), float(inliers_u.max())
    reach = s.end_pad + 3 * s.step
    start = a - 2 * s.flank if first - a < reach else first - s.end_pad
    end = b + 2 * s.flank if b - last < reach else last + s.end_pad
    return start, end


class WireTracker:
    """Finds one wire in successive frames, from one keyframe (polarity and strength are fixed there)."""

    def __init__(self, settings: TrackSettings, axes: Axes):
        self.s = settings
        self.axes = axes
        self.polarity = DARK
        self.ref = 1.0

    def start(self, grey: np.ndarray, points: np.ndarray) -> WireFit:
        """Fit the wire near a keyframe's clicked ``points`` (N, 2) and follow it to its ends.

        Args:
            grey: (H, W) float32 grey levels 0..255.
        """
        s = self.s
        uv = self.axes.to_uv(points)
        order = np.argsort(uv[:, 0])
        uv = uv[order]
        a, b = float(uv[0, 0]), float(uv[-1, 0])
        curve = fit_curve(self.axes, uv[:, 0], uv[:, 1], np.ones(len(uv)), a, b)
        best = None
        for polarity in (DARK, BRIGHT):
            u = _stations(curve, grey.shape, s, (a, b))
            if len(u) < 3:
                break
            obs = _observe(grey, curve, u, s.key_radius, polarity, s)
            strength = float(np.median(obs.peak[obs.inside])) if obs.inside.any() else 0.0
            if best is None or strength > best[0]:
                best = (strength, polarity)
        if best is None or best[0] <= 0:
            return WireFit(curve.with_span(a, b), 1.0, 0.0, True, 0.0)
        self.polarity, self.ref = best[1], best[0]
        span = (a, b)
        fit = None
        radius = s.key_radius
        for _ in range(s.key_rounds):
            u = _stations(curve, grey.shape, s, (span[0] - s.key_growth, span[1] + s.key_growth))
            if len(u) < 3:
                break
            got = _robust_fit(_observe(grey, curve, u, radius, self.polarity, s), self.axes, self.ref, radius, s)
            if got is None:
                break
            curve, inliers = got
            fit = self._finish(grey, curve, prior_width=None)
            new_span = (curve.lo, curve.hi)
            radius = max(s.refine_radius + 2, radius // 2)
            if abs(new_span[0] - span[0]) < s.step and abs(new_span[1] - span[1]) < s.step:
                break
            span = new_span
        if fit is None:
            return WireFit(curve.with_span(a, b), 1.0, 0.0, True, 0.0)
        return WireFit(fit.curve, fit.width, 1.0, False, fit.strength)

    def step(self, grey: np.ndarray, prev: WireFit, before: WireFit | None) -> WireFit:
        """The wire in the next frame (either direction) from the last two fits."""
        s = self.s
        u = _stations(prev.curve, grey.shape, s)
        if len(u) < 3:  # out of the frame: carry the curve, no judgement
            return WireFit(prev.curve, prev.width, float("nan"), True, prev.strength)
        shift = None
        if before is not None and not prev.carried and not before.carried:
            shift = s.damping * (prev.curve.v(u) - before.curve.v(u))
            shift = np.clip(shift, -s.search_radius / 2, s.search_radius / 2)
        obs = _observe(grey, prev.curve, u, s.search_radius, self.polarity, s, shift)
        got = _robust_fit(obs, self.axes, self.ref, s.search_radius, s)
        confidence = 0.0
        if got is not None:
            confidence = float(got[1].sum()) / max(int(obs.inside.sum()), 1)
        if got is None or confidence < s.min_confidence:
            return WireFit(prev.curve, prev.width, confidence, True, prev.strength)
        fit = self._finish(grey, got[0], prior_width=prev.width)
        return WireFit(fit.curve, fit.width, confidence, False, fit.strength)

    def _finish(self, grey: np.ndarray, curve: Curve, prior_width: float | None) -> WireFit:
        """Narrow search around ``curve``: the final curve, its visible span, width and strength."""
        s = self.s
        u = _stations(curve, grey.shape, s, (curve.lo - s.step, curve.hi + s.step))
        obs = _observe(grey, curve, u, s.refine_radius, self.polarity, s) if len(u) >= 3 else None
        got = _robust_fit(obs, self.axes, self.ref, s.refine_radius, s) if obs is not None else None
        if got is not None:
            curve, inliers = got
        else:
            inliers = None
        if inliers is None or not inliers.any():
            start, end = _visible_span(curve, np.array([curve.lo, curve.hi]), grey.shape, s)
            return WireFit(curve.with_span(start, end), prior_width or 1.0, 1.0, False, self.ref)
        start, end = _visible_span(curve, obs.uv[inliers, 0], grey.shape, s)
        widths = obs.widths[inliers]
        widths = widths[np.isfinite(widths)]
        width = float(np.median(widths)) if len(widths) else (prior_width or 1.0)
        if prior_width is not None:  # light temporal smoothing: a wire's width does not jump
            width = 0.7 * prior_width + 0.3 * width
        strength = float(np.median(obs.peak[inliers]))
        self.ref = 0.8 * self.ref + 0.2 * strength
        return WireFit(curve.with_span(start, end), width, 1.0, False, strength)


def _run(tracker: WireTracker, grey_at: Callable[[int], np.ndarray], first: WireFit, frames: range
         ) -> dict[int, WireFit]:
    out: dict[int, WireFit] = {}
    prev, before = first, None
    for t in frames:
        fit = tracker.step(grey_at(t), prev, before)
        out[t] = fit
        before, prev = prev, fit
    return out


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
    return WireFit(curve, width, float(conf), a.carried and b.carried, max(a.strength, b.strength))


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
        forward = _run(trackers[key.index], grey_at, starts[key.index], range(key.index + 1, next_key))
        backward = _run(trackers[key.index], grey_at, starts[key.index], range(key.index - 1, prev_key, -1))
        for t, fit in list(forward.items()) + list(backward.items()):
            if t in fits:  # between two keys: both directions met here
                a, b = (prev_key, key.index) if t < key.index else (key.index, next_key)
                w_self = 1.0 - abs(t - key.index) / (b - a)
                fits[t] = blend_fits(fits[t], fit, 1.0 - w_self, w_self)
            else:
                fits[t] = fit
                if progress:
                    progress(1)
    return [fits[t] for t in range(num_frames)]


def fits_report(name: str, fits: Sequence[WireFit]) -> dict:
    """Per-wire summary: frames carried at low confidence, out of the frame, widths (px)."""
    low = [t for t, f in enumerate(fits) if f.carried and np.isfinite(f.confidence)]
    out = [t for t, f in enumerate(fits) if not np.isfinite(f.confidence)]
    widths = np.array([f.width for f in fits])
    conf = np.array([f.confidence for f in fits], np.float64)
    return {"name": name, "low_confidence_frames": low, "out_of_frame_frames": out,
            "width_px": {"median": round(float(np.median(widths)), 2), "min": round(float(widths.min()), 2),
                         "max": round(float(widths.max()), 2)},
            "confidence": {"mean": round(float(np.nanmean(conf)), 3) if np.isfinite(conf).any() else None,
                           "min": round(float(np.nanmin(conf)), 3) if np.isfinite(conf).any() else None}}
