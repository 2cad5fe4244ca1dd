"""Running out of device memory: recognise it, give memory back, retry with a smaller piece.

Every stage of the ProPainter engine has a ladder of ever smaller ways to do its work
(RAFT: fewer pairs at once, then on-demand correlation; flow completion: shorter
sub-videos; the transformer: one window at a time). :func:`retry_on_resource_error`
walks such a ladder: one warning per step, naming the stage, the error and the next way.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

import torch

log = logging.getLogger("propainter_wire")

A = TypeVar("A")
R = TypeVar("R")


def is_resource_error(exc: BaseException) -> bool:
    """Out of device memory, or a library refusing a problem this size (cuDNN/cuBLAS)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return "out of memory" in text or "CUDNN_STATUS_NOT_SUPPORTED" in text or "CUBLAS_STATUS" in text


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (at most 200 characters), or its type's name."""
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def release_memory(collect: bool = True) -> None:
    """Collect garbage (with ``collect``) and hand the CUDA caching allocator's free blocks back.

    A full collection is for recovering from an error, whose traceback may hold tensors in reference
    cycles; it costs tens of milliseconds of the host's time (68 ms with torch loaded after one clip,
    190,000 objects, 2-core VM) that the GPU waits through, so a stage handing back memory it has
    dropped itself passes ``collect=False``.
    """
    if collect:
        gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_END = object()


def retry_on_resource_error(run: Callable[[A], R], attempts: Iterable[A], *, stage: str,
                            describe: Callable[[A], str], before_retry: Callable[[A], None] | None = None) -> R:
    """``run(attempt)`` for the attempts in turn, until one returns; its result.

    A resource error (:func:`is_resource_error`) moves to the next attempt: ``before_retry(next)``
    runs (to drop caches, for instance), memory is released, and a warning
    ``"<stage>: <error's first line>; <describe(next)>"`` is logged. Any other error, and the
    error of the last attempt, propagate. ``attempts`` may be a generator: the next attempt is
    asked for only after a failure, so it may depend on the state the failure left.
    """
    ladder = iter(attempts)
    attempt = next(ladder)
    while True:
        try:
            return run(attempt)
        except RuntimeError as exc:  # (torch.OutOfMemoryError is one)
            if not is_resource_error(exc):
                raise
            following = next(ladder, _END)
            if following is _END:
                raise
            if before_retry is not None:
                before_retry(following)
            release_memory()
            log.warning("%s: %s; %s", stage, first_line(exc), describe(following))
            attempt = following
