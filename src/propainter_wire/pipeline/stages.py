"""Stage timing and progress bars.

A run is a sequence of named stages (read, flow, complete, propagate, transformer,
composite, write ...). ``Stages`` times each one, draws one tqdm bar per stage
unless quiet, and logs each stage's start at debug level.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

log = logging.getLogger("propainter_wire")


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass


@dataclass
class Stages:
    """Per-stage wall time (seconds) and progress bars.

    Usage::

        stages = Stages(quiet=False)
        with stages("flow", total=len(pairs)) as bar:
            for ...: bar.update()
        stages.seconds  # {'flow': 1.23}
    """

    quiet: bool = True
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str, total: int | None = None) -> Iterator:
        log.debug("stage %s: start (total=%s)", name, total)
        start = time.perf_counter()
        bar = _NullBar()
        if not self.quiet and total:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=name, unit="it", leave=False, dynamic_ncols=True)
        try:
            yield bar
        finally:
            if hasattr(bar, "close"):
                bar.close()
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            log.debug("stage %s: %.3f s", name, elapsed)
