"""Which engine runs, and loading it on a thread while the frames decode."""

from __future__ import annotations

import logging
import threading

from ..config import InpaintConfig
from ..tuning import Tuning

log = logging.getLogger("propainter_wire")


def select_engine(config: InpaintConfig, device, tuning: Tuning | None = None):
    """The engine the settings ask for: ``auto`` takes propainter when its weights are found.

    Args:
        config: ``engine``, ``weights_dir`` and ``precision`` are read.
        device: a resolved ``torch.device``.
        tuning: run-time switches; its ``weights_dir`` is searched after ``config.weights_dir``
            and it is handed to the ProPainter engine (default: ``Tuning()``).
    Raises:
        WeightsError: ``propainter`` asked for and a checkpoint is missing, truncated or foreign.
    """
    from ..weights import find_weights_dir, require_weights_dir

    tuning = Tuning() if tuning is None else tuning
    name = config.engine
    weights_dir = None
    if name in ("auto", "propainter"):
        if name == "propainter":
            weights_dir = require_weights_dir(config.weights_dir, env_dir=tuning.weights_dir)
        else:
            weights_dir = find_weights_dir(config.weights_dir, env_dir=tuning.weights_dir)
        if weights_dir is None:
            log.warning("ProPainter checkpoints not found (see `propainter-wire weights list`); "
                        "using the classic engine")
            name = "classic"
        else:
            name = "propainter"
    if name == "propainter":
        from ..engines.propainter import ProPainterEngine

        return ProPainterEngine(weights_dir, device=device, precision=config.precision, tuning=tuning)
    from ..engines.classic import ClassicEngine

    return ClassicEngine()


class EngineLoader:
    """Loads the engine for ``device`` (already resolved) on a thread, while the frames are read.

    Loading the networks (checkpoints, CUDA start-up) takes as long as decoding a
    short clip; the two overlap. ``result()`` waits and returns the engine, or raises
    what loading raised (so errors surface where a synchronous load would raise them).
    A run that fails before ``result()`` calls ``settle()``: a thread still inside torch
    when the interpreter exits aborts the process (``terminate called without an active
    exception``, exit code 134 instead of the run's own).
    """

    def __init__(self, config: InpaintConfig, device, tuning: Tuning | None = None) -> None:
        self.device = device
        self._engine = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, args=(config, tuning), name="engine-loader", daemon=True)
        self._thread.start()

    def _load(self, config: InpaintConfig, tuning: Tuning | None) -> None:
        try:
            self._engine = select_engine(config, self.device, tuning)
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
