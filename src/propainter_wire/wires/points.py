"""The wires file: rough polylines along each wire on one or more keyframes.

Format (JSON)::

    {"wires": [{"keys": [{"frame": 0, "points": [[12, 140], [320, 171], [630, 128]]},
                         {"frame": 48, "points": [[10, 150], [625, 140]]}]}]}

A key's ``points`` are ``[x, y]`` pixel positions (x right, y down, pixel centres at
integers) within about 5 px of the wire, 2 or more, in any order along it; they
need not reach the wire's ends. ``frame`` is the index into the clip for a video
or a folder of un-numbered images, and the frame number for a folder of numbered
images (``shot.1001.png`` is frame 1001). An optional ``"name"`` labels a wire in
the report.

Every problem is one ``InputError`` line naming the file, the wire and the key.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

# A point may lie this far outside the frame (pixels): a user clicking on the very
# edge of a 640-px frame may well produce x = 640.
EDGE_SLACK = 1.0


@dataclass(frozen=True)
class Key:
    """One keyframe of a wire: ``index`` into the clip, ``points`` (N, 2) float64 (x, y) px, N >= 2."""

    index: int
    points: np.ndarray


@dataclass(frozen=True)
class WireSpec:
    """A wire to find: its name and its keyframes sorted by frame index (distinct)."""

    name: str
    keys: tuple[Key, ...]


def frame_numbers(stems: Sequence[str]) -> list[int] | None:
    """The number of each frame of a numbered sequence (last digit run of each stem), or None.

    None when a stem holds no digits or two stems share a number: then ``frame`` is an index.
    """
    numbers = []
    for stem in stems:
        runs = re.findall(r"\d+", stem)
        if not runs:
            return None
        numbers.append(int(runs[-1]))
    return numbers if len(set(numbers)) == len(numbers) else None


def load_wires(path: str | Path, num_frames: int, height: int, width: int,
               numbers: Sequence[int] | None = None) -> list[WireSpec]:
    """Read and check a wires file.

    Args:
        path: the JSON file.
        num_frames, height, width: the clip's length and frame size (pixels).
        numbers: frame numbers of a numbered sequence (``frame_numbers``), or None
            when ``frame`` is an index.
    Raises:
        InputError: unreadable file, bad JSON, missing fields, unknown frame, fewer
            than 2 points, a point outside the frame, the same frame keyed twice.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such wires file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read wires file: {exc}", path) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path) from None
    return parse_wires(data, num_frames, height, width, numbers, path)


def parse_wires(data, num_frames: int, height: int, width: int, numbers: Sequence[int] | None = None,
                path: str | Path | None = None) -> list[WireSpec]:
    """Check the decoded JSON of a wires file (see ``load_wires``); ``path`` only names it in errors."""
    def fail(message: str) -> InputError:
        return InputError(message, path)

    if isinstance(data, list):  # a bare list of wires is accepted too
        data = {"wires": data}
    if not isinstance(data, dict) or not isinstance(data.get("wires"), list):
        raise fail('expected an object {"wires": [...]}')
    if not data["wires"]:
        raise fail("no wire listed")
    index_of = {n: i for i, n in enumerate(numbers)} if numbers is not None else None
    wires = []
    for w, wire in enumerate(data["wires"]):
        label = f"wire {w + 1}"
        if not isinstance(wire, dict) or not isinstance(wire.get("keys"), list) or not wire["keys"]:
            raise fail(f'{label}: expected {{"keys": [{{"frame": N, "points": [[x, y], ...]}}, ...]}}')
        name = str(wire.get("name", label))
        keys: dict[int, Key] = {}
        for k, key in enumerate(wire["keys"]):
            where = f"{label}, key {k + 1}"
            if not isinstance(key, dict) or "frame" not in key or "points" not in key:
                raise fail(f'{where}: expected {{"frame": N, "points": [[x, y], ...]}}')
            index = _frame_index(key["frame"], num_frames, index_of, fail, where)
            if index in keys:
                raise fail(f"{where}: frame {key['frame']} is keyed twice")
            keys[index] = Key(index, _points(key["points"], height, width, fail, where))
        wires.append(WireSpec(name, tuple(keys[i] for i in sorted(keys))))
    return wires


def _frame_index(frame, num_frames: int, index_of: dict[int, int] | None, fail, where: str) -> int:
    if isinstance(frame, bool) or not isinstance(frame, (int, float)) or float(frame) != int(frame):
        raise fail(f"{where}: frame must be an integer, got {frame!r}")
    frame = int(frame)
    if index_of is not None:
        if frame not in index_of:
            first, last = min(index_of), max(index_of)
            raise fail(f"{where}: unknown frame {frame} (the sequence is numbered {first}..{last})")
        return index_of[frame]
    if not 0 <= frame < num_frames:
        raise fail(f"{where}: unknown frame {frame} (the clip has frames 0..{num_frames - 1})")
    return frame


def _points(points, height: int, width: int, fail, where: str) -> np.ndarray:
    if not isinstance(points, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in p)
            for p in points):
        raise fail(f"{where}: points must be a list of [x, y] numbers")
    if len(points) < 2:
        raise fail(f"{where}: needs 2 or more points along the wire, got {len(points)}")
    array = np.asarray(points, dtype=np.float64)
    for x, y in array:
        if not (-EDGE_SLACK <= x <= width - 1 + EDGE_SLACK and -EDGE_SLACK <= y <= height - 1 + EDGE_SLACK):
            raise fail(f"{where}: point [{x:g}, {y:g}] is outside the {width}x{height} frame")
    if np.ptp(array, axis=0).max() < 2.0:
        raise fail(f"{where}: the points are all at one place; give points spread along the wire")
    return array
