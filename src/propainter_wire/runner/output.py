"""The output folder of a file run: undoing a failed run, and writing the composited frames.

Frames are composited at full resolution and written atomically as soon as they are
final: the engine may report frames final early (:class:`EarlyWriter`, on a thread pool
while it works on); the rest are written after it (:func:`write_frames`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..config import InpaintConfig
from ..io.output import FRAMES_DIR, MANIFEST_NAME, REPORT_NAME, TEMP_PREFIX, VIDEO_NAME, write_image
from ..pipeline.compositing import composite_frame
from ..pipeline.stages import Stages
from ..samples import to_uint8
from .threads import batched_map


def _save_image(index: int, target: Path, frame: np.ndarray) -> None:
    write_image(target, frame)


def _compose(index: int, original, filled, raw_mask, mask, config: InpaintConfig) -> np.ndarray:
    return composite_frame(original, filled, raw_mask, mask, config)


class OutputRun:
    """The output folder of one run, and how to undo it while no frame is written."""

    def __init__(self, path: Path):
        self.path = path
        self.existed = path.exists()
        self.fresh_manifest = False  # this run wrote manifest.json from scratch

    @property
    def frames_dir(self) -> Path:
        return self.path / FRAMES_DIR

    def has_frames(self) -> bool:
        try:
            return any(not n.startswith(TEMP_PREFIX) for n in os.listdir(self.frames_dir))
        except OSError:
            return False

    def discard_if_empty(self) -> None:
        """After a failure: remove what this run made when no frame is in the folder."""
        if not self.fresh_manifest and self.existed:
            return
        if self.has_frames():
            return
        for folder in (self.frames_dir, self.path):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.startswith(TEMP_PREFIX) or (folder == self.path and name in (MANIFEST_NAME, REPORT_NAME)):
                    unlink_quietly(folder / name)
        for folder in (self.frames_dir, None if self.existed else self.path):
            if folder is not None:
                try:
                    folder.rmdir()  # only when empty
                except OSError:
                    pass


def remove_stale_temp_files(folder: Path) -> None:
    """Half-written files of a killed run (their final names were never made)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for name in names:
        unlink_quietly(folder / name)


def unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


class EarlyWriter:
    """Composites and writes the frames an engine reports final, on a thread pool, while it works on.

    Called as ``on_final(index, filled)``; ``close`` waits for the writes and returns the
    indices written (a failed write is raised there, or at the next call).

    Args:
        frames, raw_masks: the full-size (H, W, 3) frames and (H, W) bool user masks.
        masks: (T, h, w) bool dilated masks at processing size.
        targets: one output path per frame.
        todo: the indices to write (a resumed run skips those already written).
        threads: writing threads.
        save: ``save(index, target, frame)`` writes one frame (default: :func:`write_image`; a clip's
            :meth:`~propainter_wire.io.source.FrameSource.write_frame` keeps its files' headers and channels).
        compose: ``compose(index, original, filled, raw_mask, mask, config)`` -> the full-size frame
            (default: :func:`composite_frame`; a run's delivery also regrains the fill).
    """

    def __init__(self, frames: list[np.ndarray], raw_masks: list[np.ndarray], masks: np.ndarray,
                 targets: list[Path], todo: list[int], config: InpaintConfig, threads: int, save=None, compose=None):
        self.frames, self.raw_masks, self.masks, self.targets, self.config = frames, raw_masks, masks, targets, config
        self.save = save or _save_image
        self.compose = compose or _compose
        self.todo = set(todo)
        self.threads = threads
        self.pending: dict[int, object] = {}
        self.pool = None

    def __call__(self, index: int, filled: np.ndarray) -> None:
        if index not in self.todo or index in self.pending:
            return
        self._raise_failures()
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.threads)
        self.pending[index] = self.pool.submit(self._finish, index, np.array(filled, copy=True))

    def _finish(self, i: int, filled: np.ndarray) -> None:
        frame = self.compose(i, self.frames[i], filled, self.raw_masks[i], self.masks[i], self.config)
        self.save(i, self.targets[i], frame)

    def _raise_failures(self) -> None:
        for future in self.pending.values():
            if future.done() and future.exception() is not None:
                raise future.exception()

    def close(self) -> set[int]:
        for index in sorted(self.pending):
            self.pending[index].result()
        return set(self.pending)

    def abort(self) -> None:
        """Let the writes already handed over finish (an interrupted run keeps every finished frame)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


class _IndexedVideo:
    """A delivery sink inside ``write_frames``: its caller closes or aborts it."""

    def __init__(self, sink):
        self.sink = sink

    def close(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        pass


def write_frames(frames: list[np.ndarray], filled: np.ndarray, raw_masks: list[np.ndarray], masks: np.ndarray,
                 targets: list[Path], todo: list[int], needed: list[int], out_dir: Path, fps: float | None,
                 config: InpaintConfig, stages: Stages, copy_through: bool, threads: int,
                 written: set[int] = frozenset(), save=None, compose=None, video=None) -> None:
    """Composite each needed frame at full resolution and write it (``todo`` only, less ``written``).

    With ``config.save_video`` every frame of ``needed`` also goes to the video, in order
    (8-bit: 16-bit frames keep their high byte, float ones round to nearest). ``save``,
    ``compose``: as for :class:`EarlyWriter`. ``video``: instead of that video, an object
    whose ``write(index, frame)`` takes every frame of ``needed`` in order (a run's delivery:
    master and review); the caller opens and closes it.
    """
    save = save or _save_image
    compose = compose or _compose
    writer = None
    if video is not None:
        writer = _IndexedVideo(video)
    elif config.save_video:
        from ..io import VideoWriter

        h, w = frames[0].shape[:2]
        writer = VideoWriter(out_dir / VIDEO_NAME, fps or 24.0, w, h)
    todo_set = set(todo) - set(written)
    if writer is None:
        needed = [i for i in needed if i in todo_set]

    def finish(i: int) -> np.ndarray:
        frame = frames[i] if copy_through else compose(i, frames[i], filled[i], raw_masks[i], masks[i], config)
        if i in todo_set:
            save(i, targets[i], frame)
        return frame

    try:
        with stages("write", total=len(needed)) as bar:
            # frames are composited and encoded in parallel batches; the video takes them in order
            for i, frame in batched_map(finish, needed, threads):
                if isinstance(writer, _IndexedVideo):
                    writer.sink.write(i, frame)
                elif writer is not None:
                    writer.write(to_uint8(frame))
                bar.update()
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())
        raise
