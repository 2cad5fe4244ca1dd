"""Stage timing and progress bars.

A run is a sequence of named stages (read, flow, complete, propagate, transformer,
composite, write ...). ``Stages`` times each one, draws one progress bar per stage
unless quiet (tqdm on a terminal, periodic lines otherwise: :mod:`.progress`), and
logs each stage's start at debug level.

A ``RuntimeError`` or ``MemoryError`` escaping a stage (a CUDA error, running out of
GPU or host memory) is re-raised as ``StageError`` naming the innermost stage, so the
user learns *where* it failed; the original stays attached as ``__cause__``.
``InputError`` and ``KeyboardInterrupt`` pass through unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import InputError, StageError

log = logging.getLogger("propainter_wire")


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass


@dataclass
class Stages:
    """Per-stage wall time (seconds) and progress bars.

    Usage::

        stages = Stages(quiet=False)
        with stages("flow", total=len(pairs)) as bar:
            for ...: bar.update()
        stages.seconds  # {'flow': 1.23}
        stages.gpu_peak_bytes  # {'flow': 123456789} when CUDA is in use

    Peak GPU memory is per stage (the allocator's peak is reset as a stage starts);
    the run's peak is the largest of them.
    """

    quiet: bool = True
    seconds: dict[str, float] = field(default_factory=dict)
    gpu_peak_bytes: dict[str, int] = field(default_factory=dict)  # per stage, where CUDA is in use
    current: str | None = None  # the innermost running stage
    # seconds of the stages that ran inside no other stage: with the time between them they add up to the run
    top_level: dict[str, float] = field(default_factory=dict)
    first_start: float | None = None  # ``time.perf_counter()`` as the first top-level stage began

    @contextlib.contextmanager
    def __call__(self, name: str, total: int | None = None) -> Iterator:
        log.debug("stage %s: start (total=%s)", name, total)
        start = time.perf_counter()
        bar = _NullBar()
        if not self.quiet and total:
            from .progress import progress_bar  # tqdm on a terminal, periodic lines in a log

            bar = progress_bar(total, name)
        outer, self.current = self.current, name
        if outer is None and self.first_start is None:
            self.first_start = start
        cuda = _cuda_in_use()
        if cuda is not None:
            cuda.reset_peak_memory_stats()
        try:
            with self.failures(name):
                yield bar
        finally:
            self.current = outer
            if cuda is not None:
                peak = int(cuda.max_memory_allocated())
                self.gpu_peak_bytes[name] = max(peak, self.gpu_peak_bytes.get(name, 0))
                if outer is not None:  # the outer stage's peak includes this one's
                    self.gpu_peak_bytes[outer] = max(peak, self.gpu_peak_bytes.get(outer, 0))
            if hasattr(bar, "close"):
                bar.close()
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            if outer is None:
                self.top_level[name] = self.top_level.get(name, 0.0) + elapsed
            log.debug("stage %s: %.3f s", name, elapsed)


    @staticmethod
    @contextlib.contextmanager
    def failures(name: str) -> Iterator[None]:
        """Re-raise a device failure inside the block as ``StageError(name, ...)`` (no timing, no bar).

        For code between stages (an engine's own glue) that must still name where it failed.
        """
        try:
            yield
        except (InputError, StageError):
            raise
        except (RuntimeError, MemoryError) as exc:
            raise StageError(name, describe_failure(exc)) from exc


def _cuda_in_use():
    """``torch.cuda`` when this process has initialised CUDA, else None (never initialises it)."""
    import sys

    # (torch may be importing on the engine-loader thread: a partly imported torch has no ``cuda`` yet)
    cuda = getattr(sys.modules.get("torch"), "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return None
    return cuda


def describe_failure(exc: BaseException) -> str:
    """One line about a device failure: the error's first line, plus a hint for out-of-memory."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        text += "; try --max-side, a smaller --subvideo-length or --neighbor-length, or --precision fp16"
    return text
