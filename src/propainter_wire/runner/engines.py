"""Which engine runs, and loading it on a thread while the frames decode."""

from __future__ import annotations

import logging
import threading

from ..config import InpaintConfig
from ..tuning import Tuning

log = logging.getLogger("propainter_wire")


def choose_engine(config: InpaintConfig, tuning: Tuning | None = None) -> tuple[str, object]:
    """``(name, weights_dir)`` of the engine the settings ask for: ``auto`` takes propainter when
    its weights are found (``weights_dir`` is None for the classic engine).

    Raises:
        WeightsError: ``propainter`` asked for and a checkpoint is missing, truncated or foreign.
    """
    from ..weights import find_weights_dir, require_weights_dir

    tuning = Tuning() if tuning is None else tuning
    if config.engine == "propainter":
        return "propainter", require_weights_dir(config.weights_dir, env_dir=tuning.weights_dir)
    if config.engine == "auto":
        weights_dir = find_weights_dir(config.weights_dir, env_dir=tuning.weights_dir)
        if weights_dir is not None:
            return "propainter", weights_dir
        log.warning("ProPainter checkpoints not found (see `propainter-wire weights list`); using the classic engine")
    return "classic", None


def build_engine(name: str, weights_dir, device, config: InpaintConfig, tuning: Tuning | None = None):
    """The engine ``name`` on ``device`` (a resolved ``torch.device``; unused by the classic engine)."""
    if name == "propainter":
        from ..engines.propainter import ProPainterEngine

        return ProPainterEngine(weights_dir, device=device, precision=config.precision,
                                tuning=Tuning() if tuning is None else tuning)
    from ..engines.classic import ClassicEngine

    return ClassicEngine()


def select_engine(config: InpaintConfig, device, tuning: Tuning | None = None):
    """The engine the settings ask for, on ``device`` (a resolved ``torch.device``); see :func:`choose_engine`.

    Raises:
        WeightsError: ``propainter`` asked for and a checkpoint is missing, truncated or foreign.
    """
    name, weights_dir = choose_engine(config, tuning)
    return build_engine(name, weights_dir, device, config, tuning)


class EngineLoader:
    """Resolves the device and loads the engine on a thread, while the frames are read.

    Importing torch, creating the CUDA context, the GPU self-check and reading the
    checkpoints take as long as decoding a short clip or longer; they overlap it (PNG and
    video decoding release the GIL). ``result()`` waits and returns the engine, or raises
    what loading raised (so errors surface where a synchronous load would raise them);
    ``device`` is known once it returns. ``seconds`` times the loader's own steps (on its
    thread, overlapping the caller's work): ``torch`` (the import, or the wait for one started
    early), ``device``, ``engine``. The classic engine needs neither torch nor a device: its
    ``device`` is ``"cpu"``.
    A run that fails before ``result()`` calls ``settle()``: a thread still inside torch
    when the interpreter exits aborts the process (``terminate called without an active
    exception``, exit code 134 instead of the run's own).
    """

    def __init__(self, config: InpaintConfig, device: str | object, tuning: Tuning | None = None) -> None:
        """``device``: a ``torch.device``, or a ``--device`` value (``auto``, ``cuda:1``...) resolved on the thread."""
        self.device = device
        self.seconds: dict[str, float] = {}
        self._engine = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, args=(config, tuning), name="engine-loader", daemon=True)
        self._thread.start()

    def _load(self, config: InpaintConfig, tuning: Tuning | None) -> None:
        import time

        try:
            name, weights_dir = choose_engine(config, tuning)
            if name == "classic" and self.device in ("auto", "cpu"):  # OpenCV on the CPU: no torch, no device
                self.device = "cpu"
            else:  # (a CUDA device named explicitly is checked for the classic engine too)
                clock = time.perf_counter()
                import torch  # noqa: F401 (timed on its own: seconds of a cold start)

                self.seconds["torch"] = time.perf_counter() - clock
                if isinstance(self.device, str):
                    from ..runtime.device import resolve_device

                    clock = time.perf_counter()
                    self.device = resolve_device(self.device)
                    self.seconds["device"] = time.perf_counter() - clock
            clock = time.perf_counter()
            self._engine = build_engine(name, weights_dir, self.device, config, tuning)
            self.seconds["engine"] = time.perf_counter() - clock
        except BaseException as exc:  # re-raised by result() on the caller's thread
            self._error = exc

    def result(self):
        """The engine, once loaded; raises what loading raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._engine

    def settle(self) -> None:
        """Wait for the loading to end, whatever its outcome (its error, if any, is dropped)."""
        self._thread.join()


class ReadyEngine(EngineLoader):
    """An :class:`EngineLoader` for an engine loaded already (a warm batch worker's): nothing to wait for."""

    def __init__(self, engine) -> None:  # no thread: the engine is there
        self.device = getattr(engine, "device", "cpu")
        self.seconds: dict[str, float] = {}
        self._engine = engine
        self._error = None

    def result(self):
        return self._engine

    def settle(self) -> None:
        pass
