"""Progress display: tqdm bars on a terminal, plain periodic lines otherwise (render-farm logs).

``progress_bar(total, name)`` returns an object with ``update(n=1)`` and ``close()``. When
stderr is not a terminal a bar's carriage returns would fill a log with one unreadable
line, so a :class:`LineProgress` writes one line every ``LINE_STEP`` of the work or every
``LINE_SECONDS``, whichever comes first, and one when the stage ends.
"""

from __future__ import annotations

import sys
import time

# A line at least every 10 % of a stage, or every 30 s on a slow one.
LINE_STEP = 0.10
LINE_SECONDS = 30.0
PREFIX = "propainter-wire"


class LineProgress:
    """Periodic one-line progress reports of a stage: ``propainter-wire: flow 40 % (4/10) 1.2 s``."""

    def __init__(self, total: int, name: str, stream=None, step: float = LINE_STEP, seconds: float = LINE_SECONDS,
                 clock=time.monotonic):
        self.total, self.name, self.stream = int(total), name, stream if stream is not None else sys.stderr
        self.step, self.seconds, self.clock = step, seconds, clock
        self.done = 0
        self.start = self.last_time = clock()
        self.last_fraction = 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        fraction = self.done / self.total if self.total else 1.0
        if fraction < 1.0 and (fraction - self.last_fraction >= self.step or now - self.last_time >= self.seconds):
            self._line(now, fraction)

    def _line(self, now: float, fraction: float) -> None:
        self.last_time, self.last_fraction = now, fraction
        print(f"{PREFIX}: {self.name} {fraction * 100:.0f} % ({self.done}/{self.total}) {now - self.start:.1f} s",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.done and self.last_fraction < 1.0:
            self._line(self.clock(), self.done / self.total if self.total else 1.0)


def progress_bar(total: int, name: str, stream=None):
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else a :class:`LineProgress`."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=name, unit="it", leave=False, dynamic_ncols=True, file=stream)
    return LineProgress(total, name, stream)
