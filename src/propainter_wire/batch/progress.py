"""Progress over shots and frames: tqdm bars on a terminal, plain periodic lines in a farm log."""

from __future__ import annotations

import logging
import sys
import time

from .jobs import Shot
from .worker import FAILED, ShotResult

log = logging.getLogger("propainter_wire")
LOG_EVERY_S = 30.0  # plain lines: one per finished shot, and a frame count this often


class BatchProgress:
    """Told ``start(shot, worker)``, ``frames(row, n)`` and ``finish(result)``; ``close()`` at the end.

    Args:
        shots: every shot, for the totals.
        frame_counts: row -> the shot's number of frames (absent: unknown).
        bars: tqdm bars (default: when stderr is a terminal); else log lines.
        quiet: nothing but warnings.
    """

    def __init__(self, shots: list[Shot], frame_counts: dict[int, int], bars: bool | None = None,
                 quiet: bool = False) -> None:
        self.total_shots = len(shots)
        self.names = {s.row: s.name for s in shots}
        self.frame_counts = frame_counts
        self.quiet = quiet
        self.bars = (sys.stderr.isatty() if bars is None else bars) and not quiet
        self.done = self.failed = 0
        self.seen: dict[int, int] = {}
        self.last_log = time.monotonic()
        self.shot_bar = self.frame_bar = None
        if self.bars:
            from tqdm import tqdm

            self.shot_bar = tqdm(total=self.total_shots, desc="shots", unit="shot", position=0)
            self.frame_bar = tqdm(total=sum(frame_counts.values()) or None, desc="frames", unit="frame", position=1)

    def start(self, shot: Shot, worker: str) -> None:
        if not self.bars and not self.quiet:
            log.info("batch: %s started on %s (%s frames)", shot.name, worker, self.frame_counts.get(shot.row, "?"))

    def frames(self, row: int, count: int) -> None:
        step = max(0, count - self.seen.get(row, 0))
        self.seen[row] = max(count, self.seen.get(row, 0))
        if self.frame_bar is not None:
            self.frame_bar.update(step)
        elif not self.quiet and time.monotonic() - self.last_log > LOG_EVERY_S:
            self.last_log = time.monotonic()
            log.info("batch: %d/%d shots finished; %s at frame %d/%s", self.done + self.failed, self.total_shots,
                     self.names.get(row, row), count, self.frame_counts.get(row, "?"))

    def finish(self, result: ShotResult) -> None:
        if result.status == FAILED:
            self.failed += 1
        else:
            self.done += 1
        if self.frame_bar is not None:
            rest = max(0, self.frame_counts.get(result.row, 0) - self.seen.get(result.row, 0))
            self.frame_bar.update(rest)
            self.seen[result.row] = self.frame_counts.get(result.row, 0)
            self.shot_bar.update(1)
            self.shot_bar.set_postfix(failed=self.failed)
            if result.status == FAILED:
                self.shot_bar.write(f"{result.name}: failed: {result.error}")
        elif result.status == FAILED:
            log.warning("batch: %s failed: %s", result.name, result.error)
        elif not self.quiet:
            secs = f" in {result.seconds:.1f} s" if result.seconds is not None else ""
            log.info("batch: %s %s%s (%d/%d shots finished)", result.name, result.status, secs,
                     self.done + self.failed, self.total_shots)

    def close(self) -> None:
        for bar in (self.frame_bar, self.shot_bar):
            if bar is not None:
                bar.close()
