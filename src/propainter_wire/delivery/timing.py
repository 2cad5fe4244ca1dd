"""Frame rates as exact fractions and SMPTE timecode arithmetic.

Rates are ``fractions.Fraction`` throughout: 23.976 is 24000/1001, never 23.976 as a
float (a float rate drifts by one frame every 41.7 s against the 1001 rate). Timecode
strings are ``HH:MM:SS:FF`` (non-drop) or ``HH:MM:SS;FF`` (drop-frame, 29.97/59.94 only).
"""

from __future__ import annotations

from fractions import Fraction

from ..errors import InputError

# The NTSC-family rates: n * 1000/1001. A rate within 0.05 % of one of these or of an
# integer is snapped to it; real sources store 23.976 as e.g. 2997/125 or 23.98.
_NTSC = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))
_SNAP_TOLERANCE = 5e-4


def snap_rate(rate: Fraction | float | str) -> Fraction:
    """``rate`` as the exact standard rate it approximates (23.976 -> 24000/1001, 25.0 -> 25).

    Rates that are not near a standard one are returned as a fraction with a denominator
    of at most 1001000.
    """
    value = Fraction(rate) if not isinstance(rate, Fraction) else rate
    if value <= 0:
        raise ValueError(f"frame rate must be positive, got {rate}")
    for candidate in (*_NTSC, Fraction(round(value))):
        if candidate > 0 and abs(value - candidate) / candidate < _SNAP_TOLERANCE:
            return candidate
    return value.limit_denominator(1001000)


def parse_rate(text: str) -> Fraction:
    """A user's ``--fps`` value ("24", "23.976", "24000/1001", "29.97") as an exact rate.

    Raises:
        InputError: not a positive number or fraction, or above 1000 fps.
    """
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--fps: '{text}' is not a frame rate (e.g. 24, 23.976 or 24000/1001)") from None
    if not 0 < value <= 1000:
        raise InputError(f"--fps: {text} is outside 0-1000 frames per second")
    return snap_rate(value)


def _nominal(rate: Fraction) -> int:
    """The timecode's frames per second: 24 for 23.976, 30 for 29.97."""
    return max(1, round(rate))


def _drop_count(rate: Fraction) -> int:
    """Frame numbers dropped per minute in drop-frame timecode: 2 at 29.97, 4 at 59.94."""
    return 2 * _nominal(rate) // 30


def timecode_to_frames(timecode: str, rate: Fraction) -> int:
    """Frame count from 00:00:00:00 of ``timecode`` at ``rate``.

    A ';' or '.' before the frames field means drop-frame (SMPTE 12M): frame numbers 0
    and 1 (0-3 at 59.94) are skipped at the start of every minute except each tenth.
    """
    text = timecode.strip()
    drop = ";" in text or "." in text
    try:
        hh, mm, ss, ff = (int(p) for p in text.replace(";", ":").replace(".", ":").split(":"))
    except ValueError:
        raise InputError(f"timecode '{timecode}' is not HH:MM:SS:FF") from None
    fps = _nominal(rate)
    frames = ((hh * 60 + mm) * 60 + ss) * fps + ff
    if drop:
        minutes = hh * 60 + mm
        frames -= _drop_count(rate) * (minutes - minutes // 10)
    return frames


def frames_to_timecode(frames: int, rate: Fraction, drop: bool = False) -> str:
    """The timecode of frame ``frames`` (counted from 00:00:00:00) at ``rate``; wraps at 24 h."""
    fps = _nominal(rate)
    if drop:
        dropped = _drop_count(rate)
        per_minute = fps * 60 - dropped
        per_ten = per_minute * 10 + dropped
        tens, rest = divmod(frames, per_ten)
        frames += dropped * 9 * tens
        if rest > dropped:
            frames += dropped * ((rest - dropped) // per_minute)
    frames %= fps * 86400
    ff = frames % fps
    seconds = frames // fps
    sep = ";" if drop else ":"
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{sep}{ff:02d}"


def advance_timecode(timecode: str, frames: int, rate: Fraction) -> str:
    """``timecode`` moved on by ``frames`` frames, keeping its drop/non-drop form."""
    drop = ";" in timecode or "." in timecode
    return frames_to_timecode(timecode_to_frames(timecode, rate) + frames, rate, drop)
