"""A wire's curve: its evaluation, continuation, fit and span in the frame, and the fast forms of numpy's
routines it uses, which must give numpy's results to the bit (the tracker's fits depend on them)."""

import numpy as np
import pytest
from numpy.polynomial import chebyshev as cheb

from propainter_wire.wires.curve import (
    Axes,
    Curve,
    chebyshev_basis,
    chebyshev_derivative,
    chebyshev_sum,
    fit_curve,
    frame_span,
)


def _curve(seed: int, tilt: float = 0.3) -> Curve:
    """A sagging curve fitted over u in [-150, 150] on axes tilted by ``tilt`` rad, centred in a 320x180 frame."""
    rng = np.random.default_rng(seed)
    axes = Axes(np.array([160.0, 90.0]), np.array([np.cos(tilt), np.sin(tilt)]))
    u = np.linspace(-150.0, 150.0, 60)
    v = 2e-4 * u ** 2 * rng.uniform(0.5, 1.5) + rng.normal(0, 0.3, len(u))
    return fit_curve(axes, u, v, np.ones_like(u), -150.0, 150.0)


@pytest.mark.parametrize("length", [2, 3, 4, 5, 6])
def test_derivative_is_numpys_to_the_bit(length):
    rng = np.random.default_rng(length)
    for _ in range(20):
        coef = rng.normal(0, 10, length)
        assert np.array_equal(chebyshev_derivative(coef), cheb.chebder(coef))
        if length >= 3:
            assert np.array_equal(chebyshev_derivative(chebyshev_derivative(coef)), cheb.chebder(coef, 2))


def test_sum_is_numpys_to_the_bit():
    rng = np.random.default_rng(0)
    t = rng.uniform(-1.0, 1.0, 200)
    for length in range(1, 7):
        coef = rng.normal(0, 10, length)
        assert np.array_equal(chebyshev_sum(t, coef), cheb.chebval(t, coef))


def test_continuation_is_evaluated_where_it_applies_only():
    """Past the domain, ``v`` is the end value plus tangent and bend; inside it is the polynomial: a mix of
    both gives each sample what it gets alone."""
    curve = _curve(1)
    u = np.array([-400.0, -150.0, -20.0, 0.0, 149.0, 150.0, 151.0, 300.0])
    mixed = curve.v(u)
    alone = np.array([curve.v(np.array([x]))[0] for x in u])
    assert np.array_equal(mixed, alone)
    inside = np.clip(u, curve.lo, curve.hi)
    d = u - inside
    bend = np.where(d < 0, *curve._end_bends)
    expected = cheb.chebval((2 * inside - (curve.lo + curve.hi)) / (curve.hi - curve.lo), curve.coef)
    expected = expected + d * curve.slope(inside) + 0.5 * d * d * bend
    np.testing.assert_allclose(mixed, expected, rtol=0, atol=1e-9)


def test_fit_with_a_shared_basis_is_the_same_fit():
    rng = np.random.default_rng(3)
    axes = Axes(np.array([0.0, 0.0]), np.array([1.0, 0.0]))
    u = np.sort(rng.uniform(-200, 200, 80))
    v = 1e-3 * u ** 2 + rng.normal(0, 0.5, len(u))
    basis = chebyshev_basis(u, -200.0, 200.0)
    for zeros in (0, 60, 77):  # fewer distinct samples with weight: a lower degree, the basis's first columns
        w = rng.uniform(0.1, 1.0, len(u))
        w[rng.permutation(len(u))[:zeros]] = 0.0
        plain = fit_curve(axes, u, v, w, -200.0, 200.0, -200.0, 200.0)
        shared = fit_curve(axes, u, v, w, -200.0, 200.0, -200.0, 200.0, basis)
        assert np.array_equal(plain.coef, shared.coef)
    assert len(fit_curve(axes, u, v, w, -200.0, 200.0, -200.0, 200.0, basis).coef) == 3  # 3 samples: degree 2


def _span_on_the_whole_grid(curve: Curve, height: int, width: int, step: float, margin: float):
    """``frame_span`` by brute force: the curve over the frame's reach plus a diagonal either side."""
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], np.float64)
    reach = curve.axes.to_uv(corners)[:, 0]
    diag = float(np.hypot(height, width))
    u = np.arange(reach.min() - diag, reach.max() + diag, step)
    p = curve.xy(u)
    inside = ((p[:, 0] >= -margin) & (p[:, 0] <= width - 1 + margin)
              & (p[:, 1] >= -margin) & (p[:, 1] <= height - 1 + margin))
    return (float(u[inside].min()), float(u[inside].max())) if inside.any() else None


@pytest.mark.parametrize("tilt", [0.0, 0.3, 1.2, np.pi / 2])
@pytest.mark.parametrize("margin", [0.0, 25.0])
def test_frame_span_equals_the_whole_grid(tilt, margin):
    for seed in range(4):
        curve = _curve(seed, tilt=tilt)
        got = frame_span(curve, 180, 320, margin=margin)
        assert got == _span_on_the_whole_grid(curve, 180, 320, 2.0, margin)
        # asked again, and by the same curve with another drawn span: the same answer
        assert frame_span(curve, 180, 320, margin=margin) == got
        assert frame_span(curve.with_span(-10.0, 10.0), 180, 320, margin=margin) == got
    far = Curve(Axes(np.array([160.0, 900.0]), np.array([1.0, 0.0])), np.array([0.0]), -100.0, 100.0, -100.0, 100.0)
    assert all(np.isnan(frame_span(far, 180, 320)))


def test_span_answers_are_per_frame_size():
    curve = _curve(2)
    small, large = frame_span(curve, 90, 160), frame_span(curve, 180, 320)
    assert small != large
    assert small == _span_on_the_whole_grid(curve, 90, 160, 2.0, 0.0)
