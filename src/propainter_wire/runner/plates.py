"""What a file run adds for plates: matte options, matte coverage checks, and the warnings it gave.

A matte that covers more than half of a frame is almost always the wrong way round (a
roto shape exported as holdout) or the wrong channel; a mask path equal to the input path
fills the plate with itself. Both still run, but say so, under ``--quiet`` too (warnings
are printed at every verbosity), and ``report.json`` records every warning of the run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import InpaintConfig

log = logging.getLogger("propainter_wire")

# A matte covering more than this fraction of a frame is reported.
COVERAGE_WARNING = 0.5


def matte_options(config: InpaintConfig, source) -> dict:
    """The keyword arguments of :func:`~propainter_wire.io.masks.open_masks` a run's settings and clip give."""
    return {"numbers": source.numbers, "channel": config.mask_channel, "invert": config.invert_mask,
            "soft": config.soft_matte, "origin": getattr(source, "origin", (0, 0))}


def default_colorspace(config: InpaintConfig, source) -> InpaintConfig:
    """Float files are scene-linear unless ``--colorspace`` says otherwise (the config's ``scene_linear``
    role, ACEScg in the built-in ACES config); integer files and arrays in memory are display-referred."""
    if config.colorspace is None and source.dtype.kind == "f":
        from ..io.colour import LINEAR_ROLE

        return config.replace(colorspace=LINEAR_ROLE)
    return config


def mask_coverage(raw_masks) -> list[float]:
    """The fraction of each frame's pixels the user's matte selects (0..1), rounded to 1e-4."""
    return [round(float(np.count_nonzero(raw_masks[i])) / max(1, np.asarray(raw_masks[i]).size), 4)
            for i in range(len(raw_masks))]


def check_mattes(video: Path, mask: Path, coverage: list[float], names: list[str]) -> None:
    """Warn about a mask path equal to the input and about mattes covering over half a frame."""
    if Path(video).expanduser().resolve() == Path(mask).expanduser().resolve():
        log.warning("%s: the mask is the input itself: every bright pixel will be filled", mask)
    large = [i for i, c in enumerate(coverage) if c > COVERAGE_WARNING]
    if large and min(coverage) < 1.0:  # (every pixel of every frame masked: the run refuses it, saying so)
        worst = max(large, key=lambda i: coverage[i])
        log.warning("%s: the matte covers more than %d%% of %d frame(s) (%.0f%% of %s): inverted or wrong channel? "
                    "(see --invert-mask, --mask-channel)", mask, round(COVERAGE_WARNING * 100), len(large),
                    coverage[worst] * 100, names[worst])


class WarningLog(logging.Handler):
    """Collects the warning messages of the ``propainter_wire`` logger while attached (a context manager),
    and carries the run's command line (None from the Python API) to its report."""

    def __init__(self, command_line: list[str] | None = None):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.command_line = command_line
        self._logger = logging.getLogger("propainter_wire")
        self._level = None

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))

    def __enter__(self) -> WarningLog:
        self._level = self._logger.level
        if self._logger.getEffectiveLevel() > logging.WARNING:
            self._logger.setLevel(logging.WARNING)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)
