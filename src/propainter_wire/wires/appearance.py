"""A wire's own grey level, and the lines that cannot be the wire because they are darker (or brighter) than it.

A wire is opaque: where it is at least ~2 px wide its core pixels have the wire's own grey,
whatever lies behind it; a thinner one mixes with the background, so its core lies between the
wire's grey and the background's. Either way a dark wire's core is never darker than the wire
itself. A line of the wire's polarity whose core is darker than that (brighter, for a bright wire)
by more than a tolerance is something else. That is exactly what a tracker meets where the wire
crosses a surface of its own grey: the wire vanishes there, and the crowd's edges, a shadow's foot
or the boards' stripe beside it are darker than the wire and answer the line filter instead.

The same grey says which polarity the wire shows along its length: where the background around it
is darker than a dark wire by more than the tolerance, the wire is a bright line there (a white
cable over white ice reads dark; a grey one crosses both sky and buildings), and that stretch is
searched with the other polarity, its lines judged against the wire's grey the other way round.

The grey is measured at the keyframe, from the contrast of the wire's core against the
background 7-10 px either side: ``value = background - polarity * contrast / core_share(width)``.
``core_share`` is the share of a wire's contrast its core pixel shows after the bilinear
resampling of the strip (measured on anti-aliased bars at sub-pixel positions: 0.75 for 1 px, 0.91
for 1.5 px, 0.99 for 2 px, 1.0 from 2.5 px; modelled as ``0.5 + 0.25 * width`` within [0.75, 1], which
errs towards a more extreme grey, darker for a dark wire: the side that drops fewer lines), so a
thin wire's grey is not taken for the paler mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .ridge import (
    BRIGHT,
    DARK,
    flank_grey,
    peak_offsets,
    sample_strip,
    strip_response,
    strip_response_forms,
    strip_responses,
)

if TYPE_CHECKING:
    from .curve import Curve
    from .track import TrackSettings

CORE = np.ones((1, 3), np.uint8)  # a line's core: its column and the one either side
# The line filter still answers a couple of px beside a line's core (its scales reach 3.2 px), so the
# whole-curve motion drops the responses within this many px of a foreign core. Against the station check
# alone, night sets (generated, seeds 3 and 5): mean coverage 95.47 -> 95.88 % and 90.73 -> 95.21 %; the
# day sets moved by less than 0.15 %. Without the reach (the core alone): seed 1 had one case more under target.
REACH = 2


@dataclass(frozen=True)
class Appearance:
    """A wire's grey (0..255) and how far past it a line's core may go and still be the wire (grey levels)."""

    value: float
    tolerance: float


def core_share(width: float) -> float:
    """Share (0.75..1) of a ``width``-px wire's contrast that its core pixel shows in a resampled strip."""
    return float(np.clip(0.5 + 0.25 * width, 0.75, 1.0))


def extreme_grey(strip: np.ndarray, polarity) -> np.ndarray:
    """(N, M) per column of a strip (N, M), the extreme grey of the line's polarity within 1 px: the darkest
    of the three for a dark line (``polarity`` 1), the brightest for a bright one (-1); ``polarity`` is one
    for all rows or (N,) per row."""
    sign = np.broadcast_to(np.asarray(polarity), (len(strip),))
    if (sign > 0).all():
        return cv2.erode(strip, CORE)
    if (sign < 0).all():
        return cv2.dilate(strip, CORE)
    return np.where(sign[:, None] > 0, cv2.erode(strip, CORE), cv2.dilate(strip, CORE))


def core_grey(strip: np.ndarray, col: np.ndarray, polarity) -> np.ndarray:
    """(N,) ``extreme_grey`` at column ``col`` (N,) of each row: the line's core."""
    c = np.clip(np.rint(col).astype(int), 0, strip.shape[1] - 1)
    return extreme_grey(strip, polarity)[np.arange(len(c)), c]


def measure(strip: np.ndarray, col: np.ndarray, found: np.ndarray, polarity: int, width: float,
            share: float, floor: float) -> Appearance | None:
    """The wire's appearance from its stations at a keyframe.

    Args:
        strip: (N, M) grey levels across the fitted curve; col: (N,) the wire's column per station.
        found: (N,) bool, the stations where the wire was found (at least 3, else None).
        polarity: ``ridge.DARK`` or ``ridge.BRIGHT``; width: the wire's width (px, its thin end).
        share, floor: the tolerance is ``share`` of the median contrast, at least ``floor`` grey levels.
    """
    if found.sum() < 3:
        return None
    background = flank_grey(strip[found], col[found])
    contrast = polarity * (background - core_grey(strip[found], col[found], polarity))
    value = float(np.median(background - polarity * contrast / core_share(width)))
    return Appearance(value, max(floor, share * float(np.median(contrast))))


def shown_polarity(strip: np.ndarray, polarity: int, look: Appearance | None) -> np.ndarray:
    """(N,) the polarity the wire shows at each row of a strip (N, M) centred on it: ``polarity``, or the
    other one where the background around the centre column is beyond the wire's own grey by more than
    the tolerance (a dark wire over something darker is a bright line there)."""
    shown = np.full(len(strip), polarity, np.int64)
    if look is None:
        return shown
    centre = np.full(len(strip), (strip.shape[1] - 1) / 2.0)
    across = polarity * (flank_grey(strip, centre) - look.value) < -look.tolerance
    return np.where(across, -polarity, shown)


def line_response(strip: np.ndarray, shown: np.ndarray, sigmas, symmetric: bool = True) -> np.ndarray:
    """(N, M) ``ridge.strip_response`` of each row for the polarity it shows (``shown``, (N,))."""
    if (shown == shown[0]).all():
        return strip_response(strip, int(shown[0]), sigmas, symmetric=symmetric)[0]
    dark, bright = strip_responses(strip, sigmas, symmetric=symmetric)
    return np.where((shown > 0)[:, None], dark, bright)


def line_response_forms(strip: np.ndarray, shown: np.ndarray, sigmas) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) ``line_response`` with ``symmetric`` True and with False, from one filtering of the strip."""
    if (shown == shown[0]).all():
        return strip_response_forms(strip, (int(shown[0]),), sigmas)[0]
    (dark, dark_plain), (bright, bright_plain) = strip_response_forms(strip, (DARK, BRIGHT), sigmas)
    dark_rows = (shown > 0)[:, None]
    return np.where(dark_rows, dark, bright), np.where(dark_rows, dark_plain, bright_plain)


def on_keyframe(grey: np.ndarray, curve: Curve, u: np.ndarray, polarity: int, strength: float, width: float,
                s: TrackSettings) -> Appearance | None:
    """The wire's appearance (``measure``) along its keyframe fit ``curve`` at stations ``u``, from the stations
    where it answers at least ``s.found_ratio`` of its ``strength`` (grey levels) within ``s.refine_radius``.

    Args:
        grey: (H, W) float32 grey levels 0..255; width: the wire's width at its thin end (px).
    """
    if len(u) < 3:
        return None
    half = s.refine_radius + s.flank
    strip = sample_strip(grey, curve.xy(u), curve.normals(u), np.arange(-half, half + 1, dtype=np.float64))
    response = strip_response(strip, polarity, s.sigmas, symmetric=False)[0]
    col, peak = peak_offsets(response, slice(s.flank, s.flank + 2 * s.refine_radius + 1))
    return measure(strip, col, peak > s.found_ratio * strength, polarity, width, s.core_share, s.core_floor)


def unlike(strip: np.ndarray, col: np.ndarray, polarity, look: Appearance) -> np.ndarray:
    """(N,) bool: the line at column ``col`` of each strip row is more extreme than the wire's own grey
    by more than the tolerance (darker than a dark line, brighter than a bright one; ``polarity`` one
    for all rows or (N,) per row)."""
    return np.asarray(polarity) * (look.value - core_grey(strip, col, polarity)) > look.tolerance


def unlike_columns(strip: np.ndarray, polarity, look: Appearance, reach: int = REACH) -> np.ndarray:
    """(N, M) bool: the columns of a strip (N, M) within ``reach`` px of a core unlike the wire (``unlike``)."""
    sign = np.broadcast_to(np.asarray(polarity), (len(strip),))[:, None]
    foreign = (sign * (look.value - extreme_grey(strip, polarity)) > look.tolerance).astype(np.uint8)
    return cv2.dilate(foreign, np.ones((1, 2 * reach + 1), np.uint8)).astype(bool)
