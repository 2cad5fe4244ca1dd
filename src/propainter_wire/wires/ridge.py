"""Line filters for thin dark or bright structures 1-8 px wide.

Two forms of one filter, the scale-normalised second derivative across the line
(``sigma**2 * d2I/dn2``, maximised over scales; Lindeberg's ridge measure):

- ``strip_response`` works on a *strip*: the image resampled along the normals of
  a predicted curve, rows = stations along the wire, columns = offsets across it.
  The wire runs down the strip, so one 1-D derivative across the columns plus a
  light smoothing down the rows is an oriented line filter. This is what tracking
  uses: a 160 x 57 strip costs ~0.3 ms, where a full-frame Hessian at four scales
  costs ~25 ms at 640x360 on one core.
- ``ridge_map`` is the full-frame version (largest-magnitude Hessian eigenvalue of
  the right sign), for finding lines without a prediction and for checks.

Scales: sigma 0.8, 1.4, 2.2, 3.2 px respond best to bars about 1, 2.5, 4 and 6-8 px
wide (the normalised response of a bar of width w peaks near sigma = w / 2.5).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .stats import row_median

SIGMAS = (0.8, 1.4, 2.2, 3.2)
BAR_WIDTHS = (1.0, 2.5, 4.0, 6.5)  # px, the bar width each of ``SIGMAS`` answers best
DARK, BRIGHT = 1, -1  # polarity: the sign that makes a dark / bright line's response positive
SAMPLING_BLUR_SQ = 2.0  # px**2, see profile_widths
RUN_FLOOR = 0.05  # of the peak contrast, see profile_widths


@lru_cache(maxsize=32)
def _kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(second-derivative-of-Gaussian, Gaussian) 1-D kernels, float32, radius ceil(3 sigma)."""
    r = int(np.ceil(3.0 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    d2 = (x ** 2 / sigma ** 4 - 1.0 / sigma ** 2) * g
    d2 -= d2.mean()  # zero response to a constant
    return (d2 * sigma ** 2).astype(np.float32), g.astype(np.float32)


def scales_for(width: float, above: int = 1, sigmas=SIGMAS) -> tuple[float, ...]:
    """The scales of ``sigmas`` a line ``width`` px wide needs: up to ``above`` above its own (``BAR_WIDTHS``).

    Sigmas not in ``SIGMAS`` are all kept.
    """
    if tuple(sigmas) != SIGMAS or not np.isfinite(width):
        return tuple(sigmas)
    own = int(np.argmin(np.abs(np.log(np.array(BAR_WIDTHS) / max(float(width), 0.5)))))
    return tuple(sigmas[: own + 1 + above])


def sample_strip(grey: np.ndarray, centres: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Resample ``grey`` along normals.

    Args:
        grey: (H, W) float32.
        centres: (N, 2) image points (x, y) on the predicted curve.
        normals: (N, 2) unit normals there.
        offsets: (M,) signed distances along the normal (px).
    Returns:
        (N, M) float32, bilinear; samples outside the frame repeat the border.
    """
    pos = centres[:, None, :] + offsets[None, :, None] * normals[:, None, :]
    map_x = pos[..., 0].astype(np.float32)
    map_y = pos[..., 1].astype(np.float32)
    return cv2.remap(grey, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _symmetry(smooth: np.ndarray, polarity: int, reach: int) -> np.ndarray:
    """(N, M) weight in [0, 1]: how much a line at each column stands out on *both* sides.

    With ``L`` and ``R`` the contrasts (of the line's polarity) against the smoothed strip
    ``reach`` columns to the left and right, the weight is ``min(L, R) / mean(L, R)``:
    1 for a bar on a flat background, 0 on the dark side of a step edge, which the
    second derivative alone mistakes for a line (a board's edge next to a thin wire
    pulls a tracker onto it).
    """
    pad = cv2.copyMakeBorder(smooth, 0, 0, reach, reach, cv2.BORDER_REPLICATE)  # np.pad's "edge", 10x faster
    left = polarity * (pad[:, : -2 * reach] - smooth)
    right = polarity * (pad[:, 2 * reach:] - smooth)
    low = np.minimum(left, right)
    mean = 0.5 * (left + right)
    return np.where(low > 0, low / np.maximum(mean, 1e-3), 0.0).astype(np.float32)


def strip_response(strip: np.ndarray, polarity: int, sigmas=SIGMAS, along: float = 1.0, symmetric: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Line response of a strip (see the module doc).

    Args:
        strip: (N, M) float32 from ``sample_strip`` (grey levels 0..255).
        polarity: ``DARK`` or ``BRIGHT``.
        sigmas: scales across the line (px).
        along: Gaussian smoothing down the rows (stations), in stations.
    Returns:
        response: (N, M) float32, the best scale's response (grey levels; > 0 on a line of that polarity).
        scale: (N, M) int8, index into ``sigmas`` of that scale.
    """
    return _responses(strip, (polarity,), sigmas, along, symmetric)[0]


def strip_responses(strip: np.ndarray, sigmas=SIGMAS, along: float = 1.0, symmetric: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The (N, M) ``strip_response`` of a strip for ``DARK`` and for ``BRIGHT`` lines, from one filtering
    of it per scale (the second derivative changes sign with the polarity; the symmetry weight is
    taken of the same smoothed strip). Each equals ``strip_response``'s to the bit."""
    dark, bright = _responses(strip, (DARK, BRIGHT), sigmas, along, symmetric)
    return dark[0], bright[0]


def strip_response_forms(strip: np.ndarray, polarities, sigmas=SIGMAS, along: float = 1.0
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each of ``polarities``, the (N, M) symmetric and plain responses of a strip (``strip_response``
    with ``symmetric`` True and False, each the same to the bit) from one second derivative per scale."""
    forms = _responses(strip, polarities, sigmas, along, True, plain_too=True)
    return [(sym[0], plain[0]) for sym, plain in zip(forms[0::2], forms[1::2], strict=True)]


def _responses(strip: np.ndarray, polarities, sigmas, along: float, symmetric: bool, plain_too: bool = False):
    """Per polarity, the best response over ``sigmas`` and its scale index; with ``plain_too``, each
    followed by the plain (unweighted) one."""
    _, g_along = _kernels(along)
    forms = 2 if plain_too else 1
    out = [(np.full(strip.shape, -np.inf, np.float32), np.zeros(strip.shape, np.int8))
           for _ in range(forms * len(polarities))]
    for i, sigma in enumerate(sigmas):
        d2, g = _kernels(float(sigma))
        second = cv2.sepFilter2D(strip, cv2.CV_32F, d2, g_along, borderType=cv2.BORDER_REPLICATE)
        smooth = (cv2.sepFilter2D(strip, cv2.CV_32F, g, g_along, borderType=cv2.BORDER_REPLICATE)
                  if symmetric else None)
        for k, polarity in enumerate(polarities):
            r = second if polarity > 0 else -second
            if plain_too:
                _keep_best(out[forms * k + 1], r, i)
            if symmetric:
                r = r * _symmetry(smooth, polarity, max(1, int(round(2.0 * sigma))))
            _keep_best(out[forms * k], r, i)
    return out


def _keep_best(best_which: tuple[np.ndarray, np.ndarray], r: np.ndarray, i: int) -> None:
    best, which = best_which
    better = r > best
    best[better] = r[better]
    which[better] = i


def ridge_map(grey: np.ndarray, polarity: int, sigmas=SIGMAS) -> np.ndarray:
    """Full-frame line response: (H, W) float32 grey -> (H, W) float32, > 0 on lines of that polarity.

    Per scale, the eigenvalue of ``sigma**2 * Hessian`` of larger magnitude, signed
    so a line of ``polarity`` is positive, kept where the other eigenvalue is
    smaller in magnitude (a line, not a blob); the maximum over scales.
    """
    grey = np.asarray(grey, np.float32)
    best = np.zeros(grey.shape, np.float32)
    for sigma in sigmas:
        d2, g = _kernels(float(sigma))
        x = np.arange(len(g), dtype=np.float32) - len(g) // 2
        d1 = -x / float(sigma) * g  # sigma * dG/dx: normalised first derivative
        ixx = cv2.sepFilter2D(grey, cv2.CV_32F, d2, g)
        iyy = cv2.sepFilter2D(grey, cv2.CV_32F, g, d2)
        ixy = cv2.sepFilter2D(grey, cv2.CV_32F, d1, d1)
        half_trace = 0.5 * (ixx + iyy)
        root = np.sqrt(0.25 * (ixx - iyy) ** 2 + ixy ** 2)
        lam = polarity * (half_trace + polarity * root)  # the eigenvalue of the line's sign, made positive
        other = polarity * (half_trace - polarity * root)
        r = np.where(np.abs(other) < lam, lam - np.maximum(other, 0.0), 0.0).astype(np.float32)
        np.maximum(best, r, out=best)
    return best


def peak_offsets(response: np.ndarray, columns: slice) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the sub-pixel column of the largest response within ``columns`` and its value.

    Returns (N,) float column index (parabolic refinement) and (N,) float32 peak value.
    """
    part = response[:, columns]
    idx = np.argmax(part, axis=1)
    rows = np.arange(part.shape[0])
    peak = part[rows, idx]
    left = part[rows, np.maximum(idx - 1, 0)]
    right = part[rows, np.minimum(idx + 1, part.shape[1] - 1)]
    denom = left - 2.0 * peak + right
    shift = np.where(denom < 0, 0.5 * (left - right) / np.where(denom < 0, denom, -1.0), 0.0)
    return idx + np.clip(shift, -0.5, 0.5) + (columns.start or 0), peak


def flank_grey(strip: np.ndarray, centre_col: np.ndarray, flank: tuple[int, int] = (7, 10)) -> np.ndarray:
    """(N,) the background beside a line: the median grey of each strip row's (N, M) columns ``flank``
    px either side of its column ``centre_col`` (N,), rounded to the nearest column."""
    m = strip.shape[1]
    c = np.rint(centre_col).astype(int)
    fl = np.concatenate([np.arange(-flank[1], -flank[0] + 1), np.arange(flank[0], flank[1] + 1)])
    return row_median(strip[np.arange(len(strip))[:, None], np.clip(c[:, None] + fl[None, :], 0, m - 1)])


def profile_widths(strip: np.ndarray, centre_col: np.ndarray, polarity, reach: int = 5,
                   flank: tuple[int, int] = (7, 10)) -> np.ndarray:
    """Width (px) of the line at each row of a strip: contrast area / peak contrast.

    The background is the median of the flanks ``flank`` px either side of the
    centre; the contrast ``polarity * (background - I)`` clipped at 0 is summed over
    ``|offset| <= reach``. For a bar of width w and contrast C the area is w*C and the
    peak C: the ratio is w (an anti-aliased 1-px wire reads 1..2).

    Args:
        strip: (N, M) float32; centre_col: (N,) sub-pixel column of the line.
        polarity: ``DARK`` or ``BRIGHT``, or (N,) one per row.
    Returns:
        (N,) float64 widths (nan where the peak contrast is not positive).
    """
    n, m = strip.shape
    c = np.rint(centre_col).astype(int)
    rows = np.arange(n)[:, None]
    bg = flank_grey(strip, centre_col, flank)
    core = strip[rows, np.clip(c[:, None] + np.arange(-reach, reach + 1)[None, :], 0, m - 1)]
    sign = np.reshape(polarity, (-1, 1)).astype(strip.dtype)  # one for all rows, or one per row
    contrast = np.maximum(sign * (bg[:, None] - core), 0.0)
    peak = contrast[:, reach - 1: reach + 2].max(axis=1)
    # only the run of columns around the centre that stays above RUN_FLOOR of the peak: texture of
    # the line's polarity next to it (a bright board beside a bright wire) is not the line's area;
    # summed over the whole window it read a 1-px bright wire over bright texture as 2.4-6.7 px
    above = contrast > RUN_FLOOR * peak[:, None]
    run = np.zeros_like(above)
    run[:, reach] = True
    for side in (1, -1):
        run[:, reach + side:: side][:, :reach] = np.cumprod(above[:, reach + side:: side][:, :reach], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(peak > 0, np.where(run, contrast, 0.0).sum(axis=1) / peak, np.nan)
    # Bilinear resampling spreads a thin line: on synthetic anti-aliased bars at sub-pixel
    # positions the run reads 1.87, 2.37, 2.98, 4.00, 6.00 px for 1, 2, 3, 4, 6 px bars; removing
    # SAMPLING_BLUR_SQ gives 1.23, 1.90, 2.62, 3.74, 5.83 px.
    return np.sqrt(np.maximum(raw ** 2 - SAMPLING_BLUR_SQ, 1.0))
