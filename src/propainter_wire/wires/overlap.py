"""Two wires on one line: frames where one wire's curve runs along another's.

Each wire is tracked on its own, so two wires can end up following the same line: a wire clicked
where a stronger wire of the other polarity crosses it takes that wire from the keyframe on, or a
faint wire slides onto a neighbour. Crossing wires share a stretch around the crossing (about 46 px
of 640 at a 5-degree crossing, within 2 px); wires that really run together over most of the frame
are rare. A frame where at least ``SHARED`` of one wire's part in the frame lies within the two
wires' half widths + 1 px of another wire's curve is listed in the report for both (which of the two
is right cannot be told from the curves). On the generated sets (``quality.wires``, clicks +-2 px)
it listed 136 frames of seeds 1 and 2: 56 of them under 97 % coverage, 36 of which nothing else
listed (the badly covered frames not in the report 88 -> 52 of 236); the other 80 are mostly the
frames of the wire the other one had joined. Night set: 80 frames, 40 under 97 %, 16 newly listed
(93 -> 77 of 184 not in the report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .curve import frame_span
from .track import WireFit

SHARED = 0.5  # share of a wire's in-frame length along another wire's curve
STEP = 4.0  # px of u between the points compared
SLACK = 1.0  # px beyond the two half widths


def share_along(a: WireFit, b: WireFit, shape: tuple[int, int]) -> float:
    """Share (0..1) of ``a``'s curve inside the frame (H, W) that lies within ``(a.width + b.width) / 2 +
    SLACK`` px of ``b``'s curve (distance across ``b``); 0 when ``a`` is out of the frame."""
    start, end = frame_span(a.curve, shape[0], shape[1])
    if not np.isfinite(start):
        return 0.0
    points = a.curve.xy(np.arange(start, end + 1e-6, STEP))
    uv = b.curve.axes.to_uv(points)
    across = np.abs(uv[:, 1] - b.curve.v(uv[:, 0])) / np.sqrt(1.0 + b.curve.slope(uv[:, 0]) ** 2)
    return float(np.mean(across <= 0.5 * (a.width + b.width) + SLACK))


def mark_shared(fits: Sequence[Sequence[WireFit]], shape: tuple[int, int]) -> list[list[WireFit]]:
    """Every wire's fits (one list per wire, one fit per frame), with ``shared`` set for both wires of a
    pair where either runs along the other over at least ``SHARED`` of its own length in the frame (a
    short stretch of a long wire can be all of a wire that is mostly out of the frame); such frames
    are listed as low-confidence (``clip.low_confidence``). A wire out of the frame (confidence nan)
    is neither judged nor judged against: its carried curve is no line in the image."""
    out = [list(f) for f in fits]
    for t in range(len(fits[0]) if fits else 0):
        here = [i for i, own in enumerate(fits) if np.isfinite(own[t].confidence)]
        for k, i in enumerate(here):
            for j in here[k + 1:]:
                a, b = fits[i][t], fits[j][t]
                if share_along(a, b, shape) >= SHARED or share_along(b, a, shape) >= SHARED:
                    out[i][t] = replace(a, shared=True)
                    out[j][t] = replace(b, shared=True)
    return out
