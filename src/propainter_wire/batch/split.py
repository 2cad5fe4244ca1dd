"""One long shot over several workers: time ranges with context, run as shots of their own, then joined.

A shot of T frames cut into N parts gives N kept ranges tiling ``0..T`` (:func:`~..pipeline.windows.padded_spans`);
each part runs on ``[keep_start - context, keep_stop + context)`` so the frames it keeps see the
frames around them, and only its kept frames go to the shot's output. Parts are ordinary shots
(a folder of links to their frames and masks under ``OUTPUT/.parts/k``), so they go to free workers
like any shot and ``--resume`` finishes them like any shot.

The parts follow the propainter engine's own chunk schedule (:func:`schedule`): each kept frame sees
the same flow-completion and propagation sub-videos and transformer windows as in the unsplit run, so
its frames equal the unsplit run's up to float reassociation (batches of other sizes). The classic
engine gets the same parts; its difference inside the mask is measured in docs/batch.md. Outside the
dilated mask every frame is the input's, as in any run. Only frame folders split (a video runs whole).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..io.output import FRAMES_DIR, MANIFEST_NAME, REPORT_NAME, write_json
from ..pipeline.windows import Span, padded_spans
from .jobs import Shot
from .worker import DONE, FINISHED, ShotResult, result_for

PARTS_DIR = ".parts"
PLAN_NAME = "split.json"  # under PARTS_DIR: the parts requested, so --resume cuts the shot the same way


def schedule(length: int, parts: int, config) -> list[Span] | None:
    """The parts of a ``length``-frame shot for ``parts`` workers, aligned with the engine's own chunks.

    Every part starts on a multiple of ``align`` = lcm(flow-completion sub-video, propagation sub-video,
    window stride), so the flow-completion and propagation sub-videos and the transformer windows of a
    part are the unsplit run's, shifted; its context covers what a kept frame reads: the window's local
    frames and reference frames, the propagation sub-video (+10 frames) of each of those, and the
    flow-completion sub-video (+5 flows) of their flows. A kept frame then sees the same chunks as in
    the unsplit run. None: the shot does not split (one part, or no longer than ``subvideo_length``,
    where the reference frames span the whole clip).
    """
    sub = config.subvideo_length
    prop = min(100, sub)
    stride = max(1, config.neighbor_length // 2)
    if parts < 2 or length <= sub:
        return None
    align = math.lcm(sub, prop, stride)
    half_refs = config.ref_stride * ((sub // config.ref_stride) // 2)
    reach = stride + half_refs + (prop + 10) + (sub + 5)
    context = math.ceil(reach / align) * align
    keep = max(align, math.ceil(length / parts / align) * align)
    spans = padded_spans(length, keep, context)
    return spans if len(spans) > 1 else None


@dataclass(frozen=True)
class SplitShot:
    """A shot cut into parts: the parts (shots) and their spans over the shot's frames."""

    shot: Shot
    parts: tuple[Shot, ...]
    spans: tuple[Span, ...]


def split_shot(shot: Shot, length: int, parts: int) -> SplitShot | None:
    """The parts of ``shot`` (``length`` frames; :func:`schedule`); None when it does not split (see there,
    or a video input)."""
    from ..io.frames import list_images

    spans = schedule(length, parts, shot.config) if Path(shot.input).is_dir() else None
    if spans is None:
        return None
    frames = list_images(shot.input)
    masks = list_images(shot.mask) if Path(shot.mask).is_dir() else None
    write_json(shot.output / PARTS_DIR / PLAN_NAME, {"requested": parts, "parts": len(spans)})
    config = shot.config.replace(save_video=False)
    out = []
    for k, span in enumerate(spans):
        root = shot.output / PARTS_DIR / f"{k:03d}"
        fdir = _links(root / "frames", frames[span.start:span.stop])
        mdir = _links(root / "masks", masks[span.start:span.stop]) if masks and len(masks) > 1 else shot.mask
        out.append(Shot(row=part_row(shot.row, k), name=f"{shot.name}[{span.keep_start}:{span.keep_stop}]", input=fdir,
                        mask=mdir, output=root / "out", config=config))
    return SplitShot(shot, tuple(out), tuple(spans))


def part_row(row: int, k: int) -> int:
    """The row number under which part ``k`` of row ``row`` runs (unique among every shot and part)."""
    return -(row * 10_000 + k + 1)


def requested_parts(output: Path) -> int | None:
    """The parts an earlier, unfinished split run of the shot at ``output`` requested (None: none)."""
    import json

    try:
        return int(json.loads((output / PARTS_DIR / PLAN_NAME).read_text())["requested"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def expand(shots: list[Shot], lengths: dict[int, int], parts: int | dict[int, int], resume: bool = False
           ) -> tuple[list[Shot], dict[int, SplitShot]]:
    """The shots to run (parts in place of the shots that split) and row -> :class:`SplitShot`.

    ``parts``: one count for every shot, or row -> count (a row left out runs whole). With ``resume`` a
    shot finished earlier is not split again (its worker skips it).
    """
    from .worker import finished_report

    to_run, splits = [], {}
    for shot in shots:
        n = parts if isinstance(parts, int) else parts.get(shot.row, 1)
        split = None if n < 2 or (resume and finished_report(shot.output)) else split_shot(
            shot, lengths.get(shot.row, 0), n)
        if split is None:
            to_run.append(shot)
        else:
            splits[shot.row] = split
            to_run.extend(split.parts)
    return to_run, splits


def collect(shots: list[Shot], splits: dict[int, SplitShot], results: list[ShotResult]) -> list[ShotResult]:
    """One result per shot, in ``shots`` order: the parts of each split shot joined."""
    by_row = {r.row: r for r in results}
    return [join(splits[s.row], [by_row[p.row] for p in splits[s.row].parts]) if s.row in splits else by_row[s.row]
            for s in shots]


def _links(folder: Path, files: list[Path]) -> Path:
    """A folder of symbolic links to ``files`` (made once: a resumed batch finds it)."""
    if folder.is_dir() and len(os.listdir(folder)) == len(files):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for f in files:
        os.symlink(Path(f).resolve(), folder / Path(f).name)
    return folder


def join(split: SplitShot, results: list[ShotResult]) -> ShotResult:
    """The shot's result from its parts': the kept frames moved into ``OUTPUT/frames``, a report and a
    complete manifest written, the parts removed. A failed part fails the shot (its parts stay for --resume)."""
    shot = split.shot
    failed = [r for r in results if r.status not in FINISHED]
    if failed:
        worst = failed[0]
        return result_for(shot, worst.status, error=worst.error and f"part {worst.name}: {worst.error}",
                          attempts=max(r.attempts for r in results), split=len(split.parts))
    frames_dir = shot.output / FRAMES_DIR
    frames_dir.mkdir(parents=True, exist_ok=True)
    for part, span in zip(split.parts, split.spans, strict=True):
        names = sorted(os.listdir(part.output / FRAMES_DIR), key=_natural)
        for name in names[span.local_keep]:
            os.replace(part.output / FRAMES_DIR / name, frames_dir / name)
    seconds = sum(r.seconds or 0.0 for r in results)
    frames = sum(s.keep_stop - s.keep_start for s in split.spans)
    first = results[0]
    report = {"input": str(shot.input), "mask": str(shot.mask), "output": str(shot.output), "engine": first.engine,
              "frames": frames, "width": first.width, "height": first.height,
              "split": [[s.start, s.stop, s.keep_start, s.keep_stop] for s in split.spans],
              "parts": [r.to_dict() for r in results]}
    write_json(shot.output / REPORT_NAME, report)
    write_json(shot.output / MANIFEST_NAME, {"split": len(split.parts), "frames": frames, "complete": True})
    shutil.rmtree(shot.output / PARTS_DIR, ignore_errors=True)
    return result_for(shot, DONE, frames=frames, width=first.width, height=first.height, seconds=round(seconds, 3),
                      frames_per_second=round(frames / seconds, 3) if seconds else None,
                      peak_host_bytes=max((r.peak_host_bytes or 0) for r in results) or None,
                      peak_gpu_bytes=max((r.peak_gpu_bytes or 0) for r in results) or None, engine=first.engine,
                      worker=",".join(sorted({r.worker or "" for r in results})),
                      attempts=max(r.attempts for r in results), split=len(split.parts))


def _natural(name: str):
    from ..io.frames import natural_key

    return natural_key(name)
