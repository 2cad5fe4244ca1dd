"""Shots on this machine: one warm worker process per device, shots handed out longest first.

Workers are ``spawn``-ed processes (a fresh interpreter: no CUDA state inherited), each holding a
:class:`~.worker.WarmWorker`. The parent hands one shot at a time to an idle worker, so a long
shot never waits behind a queue of short ones on a busy device. A worker that dies (a crash, an
out-of-memory kill) is restarted and its shot retried once; Ctrl-C stops handing out shots, lets
the workers stop (the frames they finished are kept for ``--resume``) and returns what was done.
"""

from __future__ import annotations

import logging
import queue
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..tuning import Tuning
from .jobs import Shot
from .worker import FAILED, INTERRUPTED, NOT_RUN, ShotResult, WarmWorker, result_for

log = logging.getLogger("propainter_wire")

RETRIES = 1  # a shot whose worker died runs once more; a second death fails it
STOP_GRACE_S = 2.0  # after Ctrl-C: time for the workers to see their own SIGINT before they are sent one
STOP_WAIT_S = 30.0  # then time to finish writing the frame in hand and exit, before they are terminated


@dataclass
class BatchOutcome:
    """Every shot's result, in jobs-file order, and whether the batch was interrupted."""

    results: list[ShotResult]
    interrupted: bool = False


def _worker_main(wid: int, device: str, tuning: Tuning, inbox, outbox, before_shot) -> None:
    """A worker process: run the shots of ``inbox`` until None, post each result (and progress) to ``outbox``."""
    log.setLevel(logging.WARNING)
    worker = WarmWorker(device, tuning, before_shot)
    try:
        while True:
            item = inbox.get()
            if item is None:
                return
            shot, resume = item
            try:
                result = worker.run(shot, resume, on_frames=lambda n, row=shot.row: outbox.put(("frames", wid, row, n)))
            except KeyboardInterrupt:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # one stop is enough: no second one mid-cleanup
                outbox.put(("result", wid, result_for(shot, INTERRUPTED, worker=device)))
                return
            outbox.put(("result", wid, result))
    except KeyboardInterrupt:
        return


class _Slot:
    """One worker process and the shot it holds."""

    def __init__(self, ctx, wid: int, device: str, tuning: Tuning, outbox, before_shot) -> None:
        self.wid, self.device = wid, device
        self.inbox = ctx.Queue()
        self.shot: Shot | None = None
        self.process = ctx.Process(target=_worker_main, args=(wid, device, tuning, self.inbox, outbox, before_shot),
                                   name=f"propainter-wire-worker-{wid}", daemon=True)
        self.process.start()

    def give(self, shot: Shot, resume: bool) -> None:
        self.shot = shot
        self.inbox.put((shot, resume))

    def close(self) -> None:
        if self.process.is_alive():
            self.inbox.put(None)


def run_local(shots: list[Shot], devices: list[str], tuning: Tuning, resume: bool = False, progress=None,
              before_shot: Callable[[Shot], None] | None = None, cost: Callable[[Shot], float] | None = None
              ) -> BatchOutcome:
    """Run ``shots`` on one worker per entry of ``devices`` (``cpu`` may repeat); see the module doc.

    Args:
        progress: told ``start(shot, worker)``, ``frames(row, n)`` and ``finish(result)`` (or None).
        before_shot: a picklable test hook, called in the worker before each shot.
        cost: the order key (longest first); default: as listed.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    outbox = ctx.Queue()
    order = sorted(shots, key=cost, reverse=True) if cost is not None else list(shots)
    pending: deque[Shot] = deque(order)
    attempts = {s.row: 0 for s in shots}
    results: dict[int, ShotResult] = {}
    slots = [_Slot(ctx, wid, dev, tuning, outbox, before_shot) for wid, dev in enumerate(devices)]
    interrupted = False
    try:
        while pending or any(s.shot is not None for s in slots):
            for slot in slots:
                if slot.shot is None and pending:
                    shot = pending.popleft()
                    attempts[shot.row] += 1
                    slot.give(shot, resume)
                    if progress is not None:
                        progress.start(shot, slot.device)
            try:
                message = outbox.get(timeout=0.25)
            except queue.Empty:
                for i, slot in enumerate(slots):
                    if slot.shot is not None and not slot.process.is_alive():
                        slots[i] = _restart(ctx, slot, len(slots), tuning, outbox, before_shot, pending, attempts,
                                            results, progress)
                continue
            _take(message, slots, results, attempts, progress)
    except KeyboardInterrupt:
        interrupted = True
        _stop(slots, outbox, results, attempts, progress)
    finally:
        for slot in slots:
            slot.close()
        for slot in slots:
            slot.process.join(timeout=5)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=5)
    final = []
    for shot in shots:
        default = result_for(shot, NOT_RUN)
        final.append(results.get(shot.row, default).replace(attempts=attempts[shot.row]))
    return BatchOutcome(final, interrupted)


def _take(message, slots: list[_Slot], results: dict, attempts: dict, progress) -> None:
    kind, wid, *rest = message
    slot = next((s for s in slots if s.wid == wid), None)
    if kind == "frames":
        if progress is not None and slot is not None and slot.shot is not None and slot.shot.row == rest[0]:
            progress.frames(rest[0], rest[1])
        return
    result: ShotResult = rest[0]
    if result.row in results:  # (a late message of a worker counted dead)
        return
    results[result.row] = result.replace(attempts=attempts[result.row])
    if slot is not None:
        slot.shot = None
    if progress is not None:
        progress.finish(results[result.row])


def _restart(ctx, slot: _Slot, step: int, tuning, outbox, before_shot, pending, attempts, results,
             progress) -> _Slot:
    """A worker died holding a shot: retry the shot once (first in line), start a new worker."""
    shot, code = slot.shot, slot.process.exitcode
    log.warning("worker %d (%s) died (exit code %s) running %s", slot.wid, slot.device, code, shot.name)
    if attempts[shot.row] <= RETRIES:
        pending.appendleft(shot)
    else:
        results[shot.row] = result_for(shot, FAILED, worker=slot.device,
                                       error=f"its worker died (exit code {code}) on every attempt")
        if progress is not None:
            progress.finish(results[shot.row])
    return _Slot(ctx, slot.wid + step, slot.device, tuning, outbox, before_shot)  # (ids stay unique)


def _stop(slots: list[_Slot], outbox, results: dict, attempts: dict, progress) -> None:
    """After Ctrl-C: collect the busy workers' results (they stop at their own SIGINT, or the one sent)."""
    import os

    deadline = time.monotonic() + STOP_GRACE_S + STOP_WAIT_S
    signalled = False
    start = time.monotonic()
    while any(s.shot is not None and s.process.is_alive() for s in slots) and time.monotonic() < deadline:
        if not signalled and time.monotonic() - start > STOP_GRACE_S:
            signalled = True
            for slot in slots:
                if slot.shot is not None and slot.process.is_alive():
                    os.kill(slot.process.pid, signal.SIGINT)
        try:
            _take(outbox.get(timeout=0.25), slots, results, attempts, progress)
        except queue.Empty:
            pass
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            break
    for slot in slots:
        if slot.shot is not None and slot.shot.row not in results:
            results[slot.shot.row] = result_for(slot.shot, INTERRUPTED, worker=slot.device)
