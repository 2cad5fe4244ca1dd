"""One frame's look at a wire: line responses across a predicted curve, and the robust fits to them.

``observe`` samples a strip across the predicted curve (``ridge.sample_strip``), finds the
strongest line response within a radius at each station and measures the width there;
``robust_fit`` fits a free curve to it, ``motion_fit`` the previous curve moved by a smooth
displacement (see ``track.py`` for how they are used). Given the wire's appearance, a line darker
than a dark wire (brighter than a bright one) is not taken for it (``appearance.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.polynomial import chebyshev as cheb

from .appearance import Appearance, line_response, line_response_forms, shown_polarity, unlike
from .curve import Axes, Curve, chebyshev_basis, fit_curve
from .ridge import peak_offsets, profile_widths, sample_strip

if TYPE_CHECKING:
    from .background import Veto
    from .track import TrackSettings

MOTION_DEGREE = 2  # of a wire's frame-to-frame displacement along its length


@dataclass(frozen=True)
class _Observation:
    u: np.ndarray  # (N,) station positions along the prediction
    v_pred: np.ndarray  # (N,) predicted v there
    uv: np.ndarray  # (N, 2) where the strongest response lies, wire axes
    peak: np.ndarray  # (N,) its response
    inside: np.ndarray  # (N,) bool, station inside the frame
    widths: np.ndarray  # (N,) measured width there (nan: none)
    unlike: np.ndarray  # (N,) bool: the line there is more extreme than the wire's grey (its response dropped)


def observe(grey: np.ndarray, curve: Curve, u: np.ndarray, radius: int, polarity: int, s: TrackSettings,
             shift: np.ndarray | None = None, symmetric: bool = True, interior: bool = False,
             veto: Veto | None = None, focus: float | None = None, look: Appearance | None = None
             ) -> _Observation:
    """The strongest line response near each station of ``curve`` (within ``radius`` px across it).

    ``focus``: px; the responses are weighted by a Gaussian of this width around the curve before the
    strongest is taken (the peaks returned are the weighted ones): the line nearest the curve wins
    over a stronger one farther off. ``look``: the wire's appearance; stations where the background is
    beyond the wire's grey are searched for a line of the other polarity (``appearance.shown_polarity``),
    and a station whose line is unlike the wire (``appearance.unlike``) keeps no response.
    """
    h, w = grey.shape
    centres = curve.xy(u)
    normals = curve.normals(u)
    if shift is not None:
        centres = centres + shift[:, None] * normals
    half = radius + s.flank
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    strip = sample_strip(grey, centres, normals, offsets)
    # The symmetric response (step edges suppressed) measures strength everywhere and picks the
    # candidate in wide searches; the plain second derivative places it in the narrow search
    # (0.15 px median error on the harness, against 1.2 px for the symmetric one on a 6-px wire).
    shown = shown_polarity(strip, polarity, look)  # the other polarity where the background is beyond the wire's grey
    if symmetric:
        gated = line_response(strip, shown, s.sigmas, symmetric=True)
    else:
        gated, plain = line_response_forms(strip, shown, s.sigmas)
    v_centre = curve.v(u) + (0.0 if shift is None else shift)
    if veto is not None:
        gated = veto.apply(gated, u, v_centre, half)
    if focus is not None:
        gated = gated * np.exp(-0.5 * (offsets / focus) ** 2)[None, :]
    window = slice(s.flank, s.flank + 2 * radius + 1)
    if symmetric:
        col, peak = peak_offsets(gated, window)
    else:
        col, _ = peak_offsets(plain if veto is None else veto.apply(plain, u, v_centre, half), window)
        near = np.clip(np.rint(col).astype(int)[:, None] + np.arange(-1, 2)[None, :], 0, strip.shape[1] - 1)
        peak = gated[np.arange(len(col))[:, None], near].max(axis=1)
    if interior:  # a response still rising past the window's end is a line outside it, not found
        rows, first, last = np.arange(len(col)), window.start, window.stop - 1
        at = np.argmax(gated[:, window], axis=1) + first
        edge = (((at == first) & (gated[:, first - 1] > gated[rows, at]))
                | ((at == last) & (gated[:, last + 1] > gated[rows, at])))
        peak = np.where(edge, 0.0, peak)
    foreign = np.zeros(len(u), bool) if look is None else unlike(strip, col, shown, look)
    peak = np.where(foreign, 0.0, peak)
    points = centres + (col - half)[:, None] * normals
    inside = ((centres[:, 0] >= 0) & (centres[:, 0] <= w - 1) & (centres[:, 1] >= 0) & (centres[:, 1] <= h - 1)
              & (points[:, 0] >= 0) & (points[:, 0] <= w - 1) & (points[:, 1] >= 0) & (points[:, 1] <= h - 1))
    widths = profile_widths(strip, col, shown)
    return _Observation(u, curve.axes.to_uv(centres)[:, 1], curve.axes.to_uv(points), peak.astype(np.float64),
                        inside, widths, foreign)


def merge(a: _Observation, b: _Observation) -> _Observation:
    """Two observations of one curve's stations as one, ordered along the wire."""
    order = np.argsort(np.concatenate([a.u, b.u]), kind="stable")
    fields = _Observation.__dataclass_fields__
    return _Observation(*(np.concatenate([getattr(a, f), getattr(b, f)])[order] for f in fields))


def _tukey(residual: np.ndarray, scale: float) -> np.ndarray:
    return np.where(np.abs(residual) < scale, (1.0 - (residual / scale) ** 2) ** 2, 0.0)


def _scales(radius: float) -> tuple[float, ...]:
    """IRLS scales, wide to narrow (px): a first fit at the search radius never lets outliers steer."""
    return tuple(max(x, 3.0) for x in (radius, radius / 2, 6.0, 4.0, 3.0, 3.0))


def _found(obs: _Observation, ref: float, s: TrackSettings) -> tuple[np.ndarray, np.ndarray]:
    """Stations with a response of at least ``found_ratio * ref``, and their data weights."""
    found = obs.inside & (obs.peak > s.found_ratio * ref)
    return found, np.where(found, np.clip(obs.peak / ref, 0.0, 2.0) ** 2, 0.0)


def robust_fit(obs: _Observation, axes: Axes, ref: float, radius: float, s: TrackSettings,
                prior: np.ndarray | None = None) -> tuple[Curve, np.ndarray] | None:
    """IRLS fit of ``v(u)`` to an observation, pulled towards the prediction where nothing was found.

    The domain is the span of the stations, so the prediction carries the curve
    where the wire is not seen. Returns the curve (span unset) and the (N,) inlier mask, or None.
    """
    found, data_w = _found(obs, ref, s)
    if found.sum() < 3:
        return None
    u_all = np.concatenate([obs.uv[:, 0], obs.u])
    v_all = np.concatenate([obs.uv[:, 1], obs.v_pred])
    prior = np.full(len(obs.u), s.prior_weight) if prior is None else prior
    residual = obs.uv[:, 1] - obs.v_pred
    lo, hi = float(obs.u.min()), float(obs.u.max())
    basis = chebyshev_basis(u_all, lo, hi)  # the same samples at every scale: their terms once
    for scale in _scales(radius):
        robust = _tukey(residual, scale)
        curve = fit_curve(axes, u_all, v_all, np.concatenate([data_w * robust, prior]), lo, hi, lo, hi, basis)
        residual = obs.uv[:, 1] - curve.v(obs.uv[:, 0])
    inliers = found & (np.abs(residual) < s.inlier_px)
    return (curve, inliers) if inliers.sum() >= 3 else None


def motion_fit(obs: _Observation, prev: Curve, ref: float, radius: float, s: TrackSettings
                ) -> tuple[Curve, np.ndarray] | None:
    """The previous curve moved by a smooth displacement ``d(u)`` (degree ``MOTION_DEGREE``).

    A wire moves as a whole (sway, drift, a swing of its middle), so a low-degree
    displacement fitted where it is seen carries the parts not seen this frame
    (low contrast, crossings) along with it. Returns the moved curve and inliers, or None.
    """
    found, data_w = _found(obs, ref, s)
    if found.sum() < 3:
        return None
    u = obs.uv[:, 0]
    d = obs.uv[:, 1] - prev.v(u)
    d_pred = obs.v_pred - prev.v(obs.u)
    lo, hi = float(obs.u.min()), float(obs.u.max())
    t = np.clip((2.0 * np.concatenate([u, obs.u]) - lo - hi) / max(hi - lo, 1e-6), -1.0, 1.0)
    basis = cheb.chebvander(t, MOTION_DEGREE)
    targets = np.concatenate([d, d_pred])
    prior = np.full(len(obs.u), s.prior_weight)
    residual = d - d_pred
    coef = np.zeros(MOTION_DEGREE + 1)
    for scale in _scales(radius):
        w = np.sqrt(np.concatenate([data_w * _tukey(residual, scale), prior]))
        coef, *_ = np.linalg.lstsq(basis * w[:, None], targets * w, rcond=None)
        residual = d - basis[: len(u)] @ coef
    inliers = found & (np.abs(residual) < s.inlier_px)
    if inliers.sum() < 3:
        return None
    a, b = min(prev.lo, lo), max(prev.hi, hi)
    grid = np.linspace(a, b, max(16, int((b - a) / s.step)))
    # beyond the stations where it was seen the wire moves with its last seen part: a
    # polynomial displacement extrapolated over an unseen end swings it onto stray lines
    held = np.clip(grid, float(u[inliers].min()), float(u[inliers].max()))
    moved = prev.v(grid) + cheb.chebval(np.clip((2.0 * held - lo - hi) / max(hi - lo, 1e-6), -1.0, 1.0), coef)
    return fit_curve(prev.axes, grid, moved, np.ones_like(grid), prev.start, prev.end, a, b), inliers
