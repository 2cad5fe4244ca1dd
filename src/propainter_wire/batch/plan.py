"""How many time ranges each shot runs as: the rule behind ``batch --split auto``.

A shot cut into parts (:func:`~.split.schedule`) finishes when its longest part does, and a part runs
its kept frames plus the context around them, so the shot's wall time in frames is
:func:`part_frames`: the unsplit length for one part, ``keep + 2 × context`` for a middle part. Every
engine stage is linear in frames (flows, completion, propagation, transformer windows), so frames
are the cost unit. With the default settings the context is 240 frames on each side of a cut
(480 recomputed per cut): a 2-way split of a 640-frame shot runs parts of 560 frames, one of 2000
frames on 4 workers parts of 1040.

The rule (:func:`auto_parts`): only workers the batch leaves idle (workers − shots) are handed out,
so a batch with at least as many shots as workers never splits; each idle worker goes to the shot
that finishes last, and only while a cut shortens that shot's longest part by at least
:data:`MIN_SAVING` of its current length. The extra compute of the context runs on workers that
would otherwise wait; the saving must still cover a part's fixed costs (its frames read again
through links, the worker's set-up at a new clip length, the join) and the model's error, a few
per cent of a long shot's time. With the defaults on 2 workers, every shot of 720 frames or more
(30 s at 24 fps, 9 sub-videos) splits in 2, and 630-640 frames where the cut falls evenly (cuts
fall on multiples of 80 frames, so 650-710 frames would leave one part too long).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .split import schedule

MIN_SAVING = 0.1  # a cut must shorten the shot's longest part by a tenth (see the module doc)


def part_frames(length: int, parts: int, config) -> int:
    """Frames the longest part of a ``length``-frame shot cut for ``parts`` workers runs (context included).

    ``length`` itself when the shot does not split (:func:`~.split.schedule` gives None).
    """
    spans = schedule(length, parts, config) if parts > 1 else None
    return length if spans is None else max(s.stop - s.start for s in spans)


def auto_parts(lengths: Sequence[int], configs: Sequence, workers: int, min_saving: float = MIN_SAVING
               ) -> list[int]:
    """The parts to request for each shot (1: it runs whole); see the module doc.

    Args:
        lengths: each shot's frame count (0: unknown, never split).
        configs: each shot's :class:`~..config.InpaintConfig` (its sub-video and window settings).
        workers: the workers of the batch.
        min_saving: the fraction of a shot's longest part a cut must save, in [0, 1).
    Returns:
        one count per shot, summing to at most ``max(workers, len(lengths))``; ``schedule(length, n)``
        of a count ``n > 1`` gives at most ``n`` parts.
    """
    parts = [1] * len(lengths)
    spare = workers - len(lengths)
    walls = [int(n) for n in lengths]
    while spare > 0 and walls:
        i = max(range(len(walls)), key=lambda k: (walls[k], -k))  # the shot that finishes last
        target = (1.0 - min_saving) * walls[i]
        for n in range(parts[i] + 1, parts[i] + spare + 1):
            wall = part_frames(lengths[i], n, configs[i])
            if wall < walls[i] and wall <= target:
                spare -= n - parts[i]
                parts[i], walls[i] = n, wall
                break
        else:
            return parts  # the batch ends with this shot, and no cut shortens it enough
    return parts


def parse_split(text: str) -> int | None:
    """``--split``: ``auto`` -> None (:func:`auto_parts` decides), else N >= 1 (1: never split)."""
    from ..errors import InputError

    if str(text).strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"--split must be auto or a whole number >= 1, got {text!r}")
    return value


def split_counts(shots: Sequence, lengths: dict[int, int], split: int | None, workers: int,
                 resume: bool = False) -> dict[int, int]:
    """row -> parts to request, for ``--split`` (``split``: N, or None for auto) on ``workers`` workers.

    ``--split N`` asks N of every shot. Auto applies :func:`auto_parts` to the shots still to run; with
    ``resume`` a shot finished earlier runs nowhere (it is skipped), one interrupted mid-split is cut as
    before (its ``.parts`` record), and one interrupted while running whole finishes whole.
    """
    from ..io.output import MANIFEST_NAME
    from .split import requested_parts
    from .worker import finished_report

    if split is not None:
        return {s.row: split for s in shots}
    counts, todo, taken = {}, [], 0  # taken: workers the shots resumed as before will hold
    for shot in shots:
        earlier = requested_parts(shot.output) if resume else None
        if resume and finished_report(shot.output):
            counts[shot.row] = 1
        elif earlier is not None or (resume and (shot.output / MANIFEST_NAME).exists()):
            counts[shot.row] = earlier or 1
            taken += counts[shot.row]
        else:
            todo.append(shot)
    # only frame folders split (a video runs whole): a video's length counts as 0, so it is not given workers
    chosen = auto_parts([lengths.get(s.row, 0) if Path(s.input).is_dir() else 0 for s in todo],
                        [s.config for s in todo], workers - taken)
    counts.update({s.row: n for s, n in zip(todo, chosen, strict=True)})
    return counts
