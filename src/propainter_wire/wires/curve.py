"""A wire as a smooth curve: ``v = f(u)`` in the wire's own axes.

Each wire gets fixed axes from its first keyframe: ``u`` along the principal
direction of the clicked points, ``v`` across it (pixels, rotated image axes).
A wire hangs as a catenary, never folding back on itself along its chord, so
``v(u)`` is single-valued for every wire this tool is meant for.

``f`` is a least-squares Chebyshev polynomial on the span of ``u`` where the wire
was seen (the *domain*), continued along its end tangents outside it: polynomials
extrapolate wildly, tangents do not. Degree 1..5 by span: 1 per 50 px, so a
catenary across 640 px (sag up to 20 % of the frame height) is fitted to within
0.1 px (degree 5), one across 160 px by degree 3, while a 60-px stub stays a straight line.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.polynomial import chebyshev as cheb

PX_PER_DEGREE = 50.0
MAX_DEGREE = 5
END_SHARE = 0.15
MAX_END_CURVATURE = 1.0 / 200.0
_END_SAMPLES = np.concatenate([np.linspace(-1.0, -1.0 + 2 * END_SHARE, 8), np.linspace(1.0 - 2 * END_SHARE, 1.0, 8)])


@dataclass(frozen=True)
class Axes:
    """The wire's frame: ``origin`` (x, y) px and unit ``tangent`` (x, y); ``normal`` is the tangent turned +90 deg."""

    origin: np.ndarray
    tangent: np.ndarray

    @classmethod
    def from_points(cls, points: np.ndarray) -> Axes:
        """Axes along the principal direction of ``points`` (N, 2), N >= 2; ``u`` grows left to right (or downwards)."""
        points = np.asarray(points, np.float64)
        origin = points.mean(axis=0)
        _, _, vt = np.linalg.svd(points - origin, full_matrices=False)
        tangent = vt[0] / np.linalg.norm(vt[0])
        if tangent[0] < -1e-9 or (abs(tangent[0]) <= 1e-9 and tangent[1] < 0):
            tangent = -tangent
        return cls(origin, tangent)

    @property
    def normal(self) -> np.ndarray:
        return np.array([-self.tangent[1], self.tangent[0]])

    def to_uv(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) image (x, y) -> (N, 2) wire (u, v)."""
        d = np.asarray(xy, np.float64) - self.origin
        return np.stack([d @ self.tangent, d @ self.normal], axis=-1)

    def to_xy(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Wire (u, v), each (N,) -> (N, 2) image (x, y)."""
        return self.origin + np.outer(u, self.tangent) + np.outer(v, self.normal)


@dataclass(frozen=True)
class Curve:
    """``v(u)`` on ``axes``: Chebyshev ``coef`` on the domain ``[lo, hi]``, tangents beyond;
    the wire is drawn over ``[start, end]`` (its visible span, px along ``u``)."""

    axes: Axes
    coef: np.ndarray
    lo: float
    hi: float
    start: float
    end: float

    def _t(self, u: np.ndarray) -> np.ndarray:
        return (2.0 * np.asarray(u, np.float64) - (self.lo + self.hi)) / max(self.hi - self.lo, 1e-6)

    def v(self, u: np.ndarray) -> np.ndarray:
        """(N,) u -> (N,) v, continued outside ``[lo, hi]`` by the end tangent plus the end curvature."""
        u = np.asarray(u, np.float64)
        inside = _clamp(u, self.lo, self.hi)
        value = chebyshev_sum(self._t(inside), self.coef)
        d = u - inside
        out = np.flatnonzero(d)
        if not len(out):  # all within the domain (most calls: the stations lie where the wire was fitted)
            return value
        # the continuation only where it applies (a few of the samples, mostly: a robust fit's residuals)
        d = d[out]
        value[out] += d * self.slope(inside[out]) + 0.5 * d * d * self._end_curvature(d)
        return value

    def _end_curvature(self, d: np.ndarray) -> np.ndarray:
        """d2v/du2 to continue with beyond each end (``d`` < 0: before ``lo``, > 0: past ``hi``)."""
        if self._end_bends is None or not np.any(d):
            return np.zeros_like(d)
        return np.where(d < 0, *self._end_bends)

    # The derived coefficients below are computed once per curve: a frame's tracking evaluates each
    # curve a few hundred times (3 wires x 24 frames: 2,800 evaluations, a third of the tracking time
    # when they were derived again at each one).
    @cached_property
    def _end_bends(self) -> tuple[float, float] | None:
        """(before ``lo``, past ``hi``): the mean d2v/du2 over the last ``END_SHARE`` of the domain at each end.

        A catenary bends more towards its ends; continuing with the end's own bend
        follows it (measured: 1.1 px off 80 px past the data on a 20 %-sag wire, 6 px
        with the tangent alone). Clipped to +-1/200 px^-1 so a noisy end cannot curl.
        None below degree 2 (no bend).
        """
        if len(self.coef) < 3:
            return None
        # d2v/dt2 at 8 samples at each end, in t
        second = chebyshev_sum(_END_SAMPLES, chebyshev_derivative(chebyshev_derivative(self.coef)))
        scale = (2.0 / max(self.hi - self.lo, 1e-6)) ** 2
        lo, hi = (min(max(float(np.mean(part)) * scale, -MAX_END_CURVATURE), MAX_END_CURVATURE)
                  for part in (second[:8], second[8:]))
        return lo, hi

    @cached_property
    def _first_derivative(self) -> np.ndarray | None:
        """Chebyshev coefficients of dv/dt (t the domain mapped to [-1, 1]); None for a constant."""
        return chebyshev_derivative(self.coef) if len(self.coef) > 1 else None

    def slope(self, u: np.ndarray) -> np.ndarray:
        """dv/du at (N,) u (the end tangent outside ``[lo, hi]``)."""
        u = _clamp(np.asarray(u, np.float64), self.lo, self.hi)
        if self._first_derivative is None:
            return np.zeros_like(u)
        return chebyshev_sum(self._t(u), self._first_derivative) * (2.0 / max(self.hi - self.lo, 1e-6))

    def xy(self, u: np.ndarray) -> np.ndarray:
        """(N,) u -> (N, 2) image points."""
        u = np.asarray(u, np.float64)
        return self.axes.to_xy(u, self.v(u))

    def normals(self, u: np.ndarray) -> np.ndarray:
        """(N, 2) unit image-space normals of the curve at (N,) u."""
        s = self.slope(u)
        t = np.outer(np.ones_like(s), self.axes.tangent) + np.outer(s, self.axes.normal)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        return np.stack([-t[:, 1], t[:, 0]], axis=1)

    @cached_property
    def _spans(self) -> dict:
        """``frame_span``'s answers for this ``v(u)``, by (height, width, step, margin): a frame asks for
        the same curve's span two or three times (564 calls, 252 distinct, on three wires over 24 frames)."""
        return {}

    def with_span(self, start: float, end: float) -> Curve:
        out = Curve(self.axes, self.coef, self.lo, self.hi, float(start), float(end))
        for name in ("_end_bends", "_first_derivative", "_spans"):  # the same v(u): what derives from it carries over
            if name in self.__dict__:
                out.__dict__[name] = self.__dict__[name]
        return out

    def samples(self, step: float = 2.0) -> np.ndarray:
        """(N,) ``u`` every ``step`` px (at most) over the drawn span ``[start, end]``, both ends included."""
        count = max(2, int(np.ceil((self.end - self.start) / step)) + 1)
        return np.linspace(self.start, self.end, count)


def chebyshev_sum(t: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``sum_k coef[k] T_k(t)`` for (N,) float ``t`` by Clenshaw's recurrence (``b_k = c_k + 2 t b_{k+1} - b_{k+2}``),
    in the order of ``numpy.polynomial.chebyshev.chebval``, so its results are the same to the bit.

    The tracker evaluates curves about 400 times a frame on 100-200 stations each, where ``chebval``'s
    checks and conversions cost more than the sums: 10,000 calls, 0.14 s of a 1.55-s profile of three
    wires over 24 frames at 640x360. With this and ``Curve.v`` skipping the end terms where every ``u``
    lies in the domain, and the end bends summed by it, the same fits, bit for bit, came 7-16 % faster
    (2-core CPU, three wires, alternating runs; 1.58 -> 1.24 s profiled).
    """
    if len(coef) == 1:
        return coef[0] + 0.0 * t
    if len(coef) == 2:
        return coef[0] + coef[1] * t
    t2 = 2.0 * t
    c0, c1 = coef[-2], coef[-1]
    for k in range(3, len(coef) + 1):
        c0, c1 = coef[-k] - c1, c0 + c1 * t2
    return c0 + c1 * t


def chebyshev_derivative(coef: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients of the derivative of ``sum_k coef[k] T_k(t)`` (len(coef) >= 2), by the recurrence
    ``d_{j-1} = 2 j c_j + d_{j+1}``, in ``numpy.polynomial.chebyshev.chebder``'s order of operations (its results
    to the bit) without its checks and copies: 1,500 calls were 0.10 s of a 2.2-s profile of three wires."""
    c = [float(x) for x in coef]
    n = len(c) - 1
    der = [0.0] * n
    for j in range(n, 2, -1):
        der[j - 1] = (2 * j) * c[j]
        c[j - 2] += (j * c[j]) / (j - 2)
    if n > 1:
        der[1] = 4 * c[2]
    der[0] = c[1]
    return np.array(der)


def _clamp(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``np.clip(u, lo, hi)`` for float arrays without its dispatch (8,000 calls a three-wire clip)."""
    return np.minimum(np.maximum(u, lo), hi)


def degree_for(span: float) -> int:
    """Polynomial degree for a domain ``span`` px long (see the module doc)."""
    return int(np.clip(round(span / PX_PER_DEGREE), 1, MAX_DEGREE))


def _domain(lo: float, hi: float) -> tuple[float, float]:
    """A fit's domain, widened to 1 px where it is shorter (a single station)."""
    return (lo - 0.5, hi + 0.5) if hi - lo < 1.0 else (lo, hi)


def chebyshev_basis(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(N, D + 1) Chebyshev terms of samples ``u`` on the domain ``[lo, hi]``, D the largest degree
    ``fit_curve`` uses there: for fitting the same samples again with other weights (``fit_curve``'s
    ``basis``; its first columns are the lower degrees' terms, to the bit)."""
    lo, hi = _domain(float(lo), float(hi))
    t = (2.0 * np.asarray(u, np.float64) - (lo + hi)) / (hi - lo)
    return cheb.chebvander(t, degree_for(hi - lo))


def fit_curve(axes: Axes, u: np.ndarray, v: np.ndarray, weights: np.ndarray, start: float, end: float,
              lo: float | None = None, hi: float | None = None, basis: np.ndarray | None = None) -> Curve:
    """Weighted least-squares ``v(u)`` through (N,) samples; the domain defaults to the span of ``u``.

    Weights are per sample (>= 0, at least two positive at distinct ``u``). ``basis``: the samples'
    ``chebyshev_basis`` on the domain ``[lo, hi]`` (both given), when they are fitted repeatedly.
    """
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    w = np.sqrt(np.maximum(np.asarray(weights, np.float64), 0.0))
    used = u[w > 0]
    lo = float(used.min()) if lo is None else float(lo)
    hi = float(used.max()) if hi is None else float(hi)
    lo, hi = _domain(lo, hi)
    rounded = np.sort(np.round(used, 1))
    distinct = 1 + int(np.count_nonzero(rounded[1:] != rounded[:-1]))  # len(np.unique(...)) without its overhead
    degree = max(1, min(degree_for(hi - lo), distinct - 1))
    if basis is None:
        basis = chebyshev_basis(u, lo, hi)
    coef, *_ = np.linalg.lstsq(basis[:, : degree + 1] * w[:, None], v * w, rcond=None)
    return Curve(axes, coef, lo, hi, float(start), float(end))


def frame_span(curve: Curve, height: int, width: int, step: float = 2.0, margin: float = 0.0) -> tuple[float, float]:
    """The ``u`` range over which the (extended) curve lies inside the frame grown by ``margin`` px.

    Returns ``(nan, nan)`` when no part of it is inside.
    """
    key = (height, width, step, margin)
    if key not in curve._spans:
        curve._spans[key] = _frame_span(curve, height, width, step, margin)
    return curve._spans[key]


def _frame_span(curve: Curve, height: int, width: int, step: float, margin: float) -> tuple[float, float]:
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], np.float64)
    reach = curve.axes.to_uv(corners)[:, 0]
    diag = float(np.hypot(height, width))
    u = np.arange(reach.min() - diag, reach.max() + diag, step)
    # a point of the frame grown by ``margin`` projects onto the wire's axis within its corners' projections
    # widened by margin * (|tx| + |ty|): only the grid's stations there can lie inside (a third of the grid,
    # where the curve alone is evaluated)
    slack = margin * float(np.abs(curve.axes.tangent).sum()) + 1e-6
    u = u[(u >= reach.min() - slack) & (u <= reach.max() + slack)]
    p = curve.xy(u)
    inside = ((p[:, 0] >= -margin) & (p[:, 0] <= width - 1 + margin)
              & (p[:, 1] >= -margin) & (p[:, 1] <= height - 1 + margin))
    if not inside.any():
        return float("nan"), float("nan")
    return float(u[inside].min()), float(u[inside].max())
