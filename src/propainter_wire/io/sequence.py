"""Numbered image sequences: ``plate.####.exr``, ``plate.%04d.exr``, ``plate.@@@@.exr``, or a folder.

A *sequence* is the files of one folder that share a name around their frame number: the
last run of digits in the name (``plate_v002.1001.exr`` is frame 1001 of ``plate_v002.####.exr``).
Frame numbers are what VFX tools pair and write by, so:

- a folder holding two numbered sequences (``plate_v001.*`` and ``plate_v002.*``) is refused;
- a gap in the numbers of a padded sequence is refused, naming the missing frames;
- ``--frames A-B`` keeps an inclusive range of numbers;
- mattes pair with plates by number when both are numbered (:func:`pair_by_number`).

A folder whose names carry no number, or numbers of varying width (``frame1``, ``frame10``:
no padding), is a plain list in natural order, paired by position, as before.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

__all__ = ["FrameRange", "Sequence", "find_sequence", "is_pattern", "pair_by_number", "parse_frame_range",
           "split_number"]

# '####' (one digit each), '%04d' / '%d', '@@@@', or '#' alone (four digits, Nuke's convention)
_PATTERN = re.compile(r"(#+|@+|%0?(\d*)d)")
_LAST_NUMBER = re.compile(r"^(.*?)(-?\d+)(\D*)$")


def is_pattern(path: str | Path) -> bool:
    """Whether ``path``'s file name holds a frame-number placeholder (``####``, ``%04d``, ``@@@@``)."""
    return _PATTERN.search(Path(path).name) is not None


def split_number(name: str) -> tuple[str, int, str, int] | None:
    """``'plate.1001.exr'`` -> ``('plate.', 1001, '.exr', 4)``: prefix, number, suffix, digit count.

    The number is the last run of digits of the name (extension included in the suffix).
    None when the name holds no digit.
    """
    stem, ext = os.path.splitext(name)
    m = _LAST_NUMBER.match(stem)
    if m is None:
        return None
    prefix, digits, rest = m.groups()
    if digits.startswith("-"):  # 'shot-12' is shot 12, not frame -12
        prefix, digits = prefix + "-", digits[1:]
    return prefix, int(digits), rest + ext, len(digits)


@dataclass(frozen=True)
class FrameRange:
    """An inclusive range of frame numbers (``--frames 1001-1100``)."""

    first: int
    last: int

    def __contains__(self, number: int) -> bool:
        return self.first <= number <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def parse_frame_range(text: str | None) -> FrameRange | None:
    """``'1001-1100'`` (or ``'1001'``) -> :class:`FrameRange`; None passes through.

    Raises:
        InputError: not ``A-B`` with ``A <= B``.
    """
    if text is None:
        return None
    m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", str(text))
    if m is None:
        raise InputError(f"--frames must be A-B (an inclusive range of frame numbers), got {text!r}")
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) is not None else first
    if last < first:
        raise InputError(f"--frames {text}: the last frame comes before the first")
    return FrameRange(first, last)


@dataclass(frozen=True)
class Sequence:
    """The files of a clip in order, with their frame numbers.

    Attributes:
        files: one path per frame.
        numbers: one frame number per file, or None for a plain (unnumbered) list.
        pattern: ``name.####.ext`` form of the sequence, for messages (the folder for plain lists).
    """

    files: tuple[Path, ...]
    numbers: tuple[int, ...] | None
    pattern: str

    def __len__(self) -> int:
        return len(self.files)

    def select(self, frames: FrameRange | None, where: Path) -> Sequence:
        """The frames of ``frames`` (all when None).

        Raises:
            InputError: a range on an unnumbered list, or a range holding no frame.
        """
        if frames is None:
            return self
        if self.numbers is None:
            raise InputError(f"--frames {frames}: these files carry no frame numbers", where)
        keep = [i for i, n in enumerate(self.numbers) if n in frames]
        if not keep:
            raise InputError(f"--frames {frames}: the sequence has frames {self.numbers[0]}-{self.numbers[-1]}",
                             where)
        if frames.first < self.numbers[0] or frames.last > self.numbers[-1]:
            raise InputError(f"--frames {frames} reaches beyond the sequence's frames "
                             f"{self.numbers[0]}-{self.numbers[-1]}", where)
        return Sequence(tuple(self.files[i] for i in keep), tuple(self.numbers[i] for i in keep), self.pattern)


def _listing(folder: Path, exts: tuple[str, ...]) -> list[str]:
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(".")]
    except OSError as exc:
        raise InputError(f"cannot list folder: {exc.strerror}", folder) from exc
    return [n for n in names if os.path.splitext(n)[1].lower() in exts and (folder / n).is_file()]


def _pattern_regex(name: str) -> tuple[re.Pattern, int]:
    """``'plate.####.exr'`` -> a regex matching its frames, and the padding (0: any width)."""
    m = _PATTERN.search(name)
    token = m.group(1)
    if token.startswith("%"):
        pad = int(m.group(2) or 0)
    else:
        pad = 4 if token == "#" else len(token)
    digits = r"(\d+)" if pad <= 1 else rf"(\d{{{pad},}})"
    regex = re.compile(re.escape(name[: m.start()]) + digits + re.escape(name[m.end():]) + r"\Z")
    return regex, pad


def _from_pattern(path: Path, exts: tuple[str, ...]) -> Sequence:
    regex, pad = _pattern_regex(path.name)
    found = []
    for name in _listing(path.parent, exts) if path.parent.is_dir() else []:
        m = regex.match(name)
        if m is not None and (pad == 0 or len(m.group(1)) == pad or not m.group(1).startswith("0")):
            found.append((int(m.group(1)), path.parent / name))
    if not path.parent.is_dir():
        raise InputError("no such folder", path.parent)
    if not found:
        raise InputError("no frame matches this pattern", path)
    found.sort()
    seq = Sequence(tuple(f for _, f in found), tuple(n for n, _ in found), str(path))
    _check_gaps(seq, path)
    return seq


def _check_gaps(seq: Sequence, where: Path) -> None:
    numbers = seq.numbers
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if len(set(numbers)) != len(numbers):
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        raise InputError(f"frame number(s) {_listing_text(dup)} appear twice in {Path(seq.pattern).name}", where)
    if missing:
        raise InputError(f"frame(s) {_listing_text(missing)} missing from {Path(seq.pattern).name} "
                         f"(frames {numbers[0]}-{numbers[-1]}): fill the gap or choose a range with --frames", where)


def _listing_text(numbers: list[int], limit: int = 6) -> str:
    """``[1006, 1007, 1008, 1012]`` -> ``'1006-1008, 1012'`` (at most ``limit`` runs)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = [str(a) if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    return ", ".join(text) + (", ..." if len(runs) > limit else "")


def _from_folder(folder: Path, exts: tuple[str, ...], order_key) -> Sequence:
    names = _listing(folder, exts)
    if not names:
        return Sequence((), None, str(folder))
    parts = {n: split_number(n) for n in names}
    if any(p is None for p in parts.values()):  # some names carry no number: a plain list
        return _plain(folder, names, order_key)
    groups: dict[tuple[str, str], list[str]] = {}
    for n, (prefix, _, suffix, _) in parts.items():
        groups.setdefault((prefix, suffix.lower()), []).append(n)
    if len(groups) > 1:
        described = []
        for (prefix, suffix), members in sorted(groups.items()):
            nums = sorted(parts[m][1] for m in members)
            described.append(f"{prefix}{'#' * parts[members[0]][3]}{suffix} ({_listing_text(nums, 2)})")
        raise InputError(f"{len(groups)} sequences in one folder: {'; '.join(described[:4])}"
                         f"{'; ...' if len(described) > 4 else ''} (name one, e.g. {described[0].split(' ')[0]})",
                         folder)
    widths = {parts[n][3] for n in names}
    numbers = [parts[n][1] for n in names]
    padded = len(widths) == 1
    if not padded:  # 'frame1', 'frame10': no padding, so no sequence to check: natural order
        return _plain(folder, names, order_key)
    order = sorted(range(len(names)), key=lambda i: numbers[i])
    prefix, _, suffix, width = parts[names[0]]
    seq = Sequence(tuple(folder / names[i] for i in order), tuple(numbers[i] for i in order),
                   str(folder / f"{prefix}{'#' * width}{suffix}"))
    _check_gaps(seq, folder)
    return seq


def _plain(folder: Path, names: list[str], order_key) -> Sequence:
    return Sequence(tuple(folder / n for n in sorted(names, key=order_key)), None, str(folder))


def find_sequence(path: str | Path, exts: tuple[str, ...], order_key) -> Sequence:
    """The sequence a folder or a ``name.####.ext`` pattern names.

    Args:
        path: a folder, or a file pattern (``####``, ``%04d``, ``@@@@``; any padding).
        exts: the image extensions considered (lower case, with the dot).
        order_key: sort key of a plain (unnumbered) list's names.

    Raises:
        InputError: no matching file, two sequences in one folder, a gap or a repeated number.
    """
    path = Path(path)
    if is_pattern(path):
        return _from_pattern(path, exts)
    return _from_folder(path, exts, order_key)


def pair_by_number(plate: tuple[int, ...], matte: tuple[int, ...], where: Path) -> list[int]:
    """For each plate frame number, the index of the matte with that number.

    Raises:
        InputError: plate frames without a matte, named by number.
    """
    index = {n: i for i, n in enumerate(matte)}
    missing = [n for n in plate if n not in index]
    if missing:
        span = f"{matte[0]}-{matte[-1]}" if matte else "none"
        raise InputError(f"{len(matte)} masks for {len(plate)} frames: no matte for frame(s) "
                         f"{_listing_text(missing)} (the mattes are frames {span}; the plate frames "
                         f"{plate[0]}-{plate[-1]})", where)
    return [index[n] for n in plate]
