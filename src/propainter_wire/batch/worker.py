"""A warm worker: runs shots back to back on one device, each engine loaded once.

The shot itself runs through the same file run as ``inpaint`` (:func:`~..runner.files.inpaint_files`)
with the worker's engine handed in, so its frames, manifest and report are those of a separate
``inpaint`` run; only the checkpoint loading, CUDA context and kernel set-up are shared.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import InpaintConfig
from ..errors import InputError, StageError
from ..io.output import FRAMES_DIR, MANIFEST_NAME, REPORT_NAME
from ..tuning import Tuning
from .jobs import Shot

log = logging.getLogger("propainter_wire")

# a shot's status in the summary
DONE, SKIPPED, FAILED, INTERRUPTED, NOT_RUN = "done", "skipped", "failed", "interrupted", "not run"
FINISHED = (DONE, SKIPPED)


@dataclass(frozen=True)
class ShotResult:
    """What became of one shot (a summary row).

    ``seconds`` is the shot's own wall time in its worker (engine loading included the first time
    a worker meets an engine); ``peak_host_bytes`` is the worker process's peak resident memory up
    to the end of the shot; ``error`` the one-line error of a failed shot; ``split`` the number of time
    ranges a shot split over several workers ran as (None: it ran whole).
    """

    row: int
    name: str
    output: str
    status: str
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    seconds: float | None = None
    frames_per_second: float | None = None
    peak_host_bytes: int | None = None
    peak_gpu_bytes: int | None = None
    engine: str | None = None
    worker: str | None = None
    attempts: int = 1
    error: str | None = None
    split: int | None = None

    def replace(self, **changes) -> ShotResult:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def result_for(shot: Shot, status: str, **fields) -> ShotResult:
    return ShotResult(row=shot.row, name=shot.name, output=str(shot.output), status=status, **fields)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, InputError | StageError) else f"{type(exc).__name__}: {text}"


def finished_report(output: Path) -> dict | None:
    """The report of a shot finished earlier (complete manifest and report), else None."""
    try:
        manifest = json.loads((output / MANIFEST_NAME).read_text())
        report = json.loads((output / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(manifest, dict) and manifest.get("complete") and isinstance(report, dict) else None


class WarmWorker:
    """Runs shots on one device, keeping every engine it loads.

    Engines are keyed by (engine name, checkpoint folder, precision): a batch mixing the classic
    and propainter engines, or two precisions, keeps one of each.

    Args:
        device: ``cpu``, ``cuda`` or ``cuda:N``: where the engines run.
        tuning: the run-time switches (read once by the batch command).
        before_shot: called with each shot before it runs (a test hook, e.g. to kill the worker).
    """

    def __init__(self, device: str, tuning: Tuning, before_shot: Callable[[Shot], None] | None = None) -> None:
        self.device = device
        self.tuning = tuning
        self.before_shot = before_shot
        self.engines: dict[tuple, object] = {}

    def engine_for(self, config: InpaintConfig):
        """The warm engine for a shot's settings, loaded on first use."""
        from ..runner.engines import build_engine, choose_engine

        name, weights_dir = choose_engine(config, self.tuning)
        key = (name, str(weights_dir), config.precision)
        if key not in self.engines:
            device = self.device
            if name == "propainter":
                from ..runtime.device import resolve_device

                device = resolve_device(self.device)
            self.engines[key] = build_engine(name, weights_dir, device, config, self.tuning)
        return self.engines[key]

    def run(self, shot: Shot, resume: bool = False,
            on_frames: Callable[[int], None] | None = None) -> ShotResult:
        """Run one shot; never raises but ``KeyboardInterrupt`` (a failure is a ``failed`` result).

        With ``resume`` a finished shot is skipped and an interrupted one finished (``inpaint --resume``).
        ``on_frames(n)`` hears every half second how many frames the output folder holds.
        """
        if resume:
            report = finished_report(shot.output)
            if report is not None:
                return result_for(shot, SKIPPED, frames=report.get("frames"), width=report.get("width"),
                                  height=report.get("height"), engine=report.get("engine"), worker=self.device,
                                  split=len(report["split"]) if isinstance(report.get("split"), list) else None)
        config = shot.config.replace(quiet=True)
        if resume and (shot.output / MANIFEST_NAME).exists():
            config = config.replace(resume=True, overwrite=False)
        clock = time.perf_counter()
        watcher = _FrameWatcher(shot.output / FRAMES_DIR, on_frames) if on_frames is not None else None
        try:
            if self.before_shot is not None:
                self.before_shot(shot)
            from ..runner.files import inpaint_files

            report = inpaint_files(shot.input, shot.mask, shot.output, config, self.tuning, start=clock,
                                   engine=self.engine_for(config))
        except Exception as exc:  # the shot fails; the worker goes on with the next
            log.debug("shot %s failed", shot.name, exc_info=True)
            return result_for(shot, FAILED, seconds=round(time.perf_counter() - clock, 3), worker=self.device,
                              error=one_line(exc))
        finally:
            if watcher is not None:
                watcher.stop()
        seconds = time.perf_counter() - clock
        return result_for(shot, DONE, frames=report["frames"], width=report["width"], height=report["height"],
                          seconds=round(seconds, 3), frames_per_second=round(report["frames"] / seconds, 3),
                          peak_host_bytes=report["peak_host_rss_bytes"], peak_gpu_bytes=report["peak_gpu_bytes"],
                          engine=report["engine"], worker=self.device)


class _FrameWatcher:
    """Counts the frames in an output folder every half second, on a thread (progress without hooks)."""

    def __init__(self, folder: Path, on_frames: Callable[[int], None]) -> None:
        self.folder, self.on_frames = folder, on_frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="frame-watcher", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import os

        last = -1
        while not self._stop.wait(0.5):
            try:
                count = sum(1 for n in os.listdir(self.folder) if not n.startswith("."))
            except OSError:
                continue
            if count != last:
                last = count
                self.on_frames(count)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
