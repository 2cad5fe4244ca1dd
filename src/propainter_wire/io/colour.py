"""Colour for the engines: the plate's colour space -> an encoding the networks suit, and back.

The engines take RGB in [0, 1]. What goes in depends on the input's colour space
(``--colorspace``, an OpenColorIO name; the config is ``$OCIO``, else OpenColorIO's built-in
ACES config ``ocio://default``):

- display-referred (sRGB, Rec.709, gamma-encoded; the default for 8/16-bit files), log (ACEScct)
  and data (``Raw``): as they are, integers scaled to [0, 1];
- scene-linear (ACEScg, linear Rec.709, ...; the default for half/float files is the config's
  ``scene_linear`` role, ACEScg): converted to the config's ``compositing_log`` role (ACEScct in
  the ACES config), whose [0, 1] spans linear -0.0069 .. 222 (about 17.5 stops), so highlights
  stay inside the networks' range instead of being clipped at 1.0. The fill comes back through
  the exact inverse transform, at the level it had.

Pixels outside the fill are never converted: the output keeps the input's own bits there.
OpenColorIO is imported on first use.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["EngineEncoding", "engine_encoding", "load_config"]

LOG_ROLE = "compositing_log"
LINEAR_ROLE = "scene_linear"
_PEAK = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


@functools.lru_cache(maxsize=4)
def load_config(path: str | None = None):
    """The OpenColorIO config: ``path`` (``$OCIO``), else the built-in ACES config."""
    import PyOpenColorIO as ocio

    try:
        return ocio.Config.CreateFromFile(path) if path else ocio.Config.CreateFromFile("ocio://default")
    except ocio.Exception as exc:
        raise InputError(f"cannot load the OpenColorIO config: {' '.join(str(exc).split())}", path) from exc


@functools.lru_cache(maxsize=16)
def _processor(config_path: str | None, src: str, dst: str):
    config = load_config(config_path)
    return config.getProcessor(src, dst).getDefaultCPUProcessor()


@dataclass(frozen=True)
class EngineEncoding:
    """How a clip's samples become the engines' [0, 1] RGB, and how a fill comes back.

    Attributes:
        colorspace: the input's colour space (None: display-referred, no conversion).
        log_space: the encoding the engines see for scene-linear input (None: the samples as they are).
        config_path: the OpenColorIO config file (None: the built-in ACES config).
    """

    colorspace: str | None = None
    log_space: str | None = None
    config_path: str | None = None

    @property
    def identity(self) -> bool:
        """Whether the engines see the samples as they are (integers scaled, floats clipped to [0, 1])."""
        return self.log_space is None

    def encode(self, frame: np.ndarray) -> np.ndarray:
        """``(..., 3)`` samples (uint8, uint16 or float) -> float32 in [0, 1] for the engines."""
        peak = _PEAK.get(frame.dtype)
        values = frame.astype(np.float32) / np.float32(peak) if peak else np.array(frame, dtype=np.float32)
        if self.log_space is not None:
            values = self._apply(values, self.colorspace, self.log_space)
        return np.clip(values, 0.0, 1.0, out=values)

    def decode(self, unit: np.ndarray) -> np.ndarray:
        """The engines' ``(..., 3)`` float32 [0, 1] -> values on the input's scale: linear values for
        scene-linear input (no clipping), else the unit values (integers: 0..1 of their range)."""
        values = np.array(unit, dtype=np.float32)
        if self.log_space is not None:
            values = self._apply(values, self.log_space, self.colorspace)
        return values

    def _apply(self, values: np.ndarray, src: str, dst: str) -> np.ndarray:
        shape = values.shape
        flat = np.ascontiguousarray(values.reshape(-1, 3), dtype=np.float32)
        _processor(self.config_path, src, dst).applyRGB(flat)
        return flat.reshape(shape)


def engine_encoding(colorspace: str | None, dtype) -> EngineEncoding:
    """The encoding for a clip of sample type ``dtype`` in ``colorspace`` (None: the default).

    ``colorspace=None`` is display-referred: no conversion, and OpenColorIO is not loaded (arrays in
    memory; the file run names the ``scene_linear`` role for float files, see
    :func:`propainter_wire.runner.plates.default_colorspace`). A role name (``scene_linear``) works too.

    Raises:
        InputError: a colour space the config does not know (the message lists some it does).
    """
    return _encoding(colorspace, np.dtype(dtype).kind == "f", os.environ.get("OCIO") or None)


@functools.lru_cache(maxsize=16)
def _encoding(colorspace: str | None, is_float: bool, config_path: str | None) -> EngineEncoding:
    if colorspace is None:
        return EngineEncoding()
    config = load_config(config_path)
    import PyOpenColorIO as ocio

    space = config.getColorSpace(colorspace)
    if space is None:
        known = [cs.getName() for cs in config.getColorSpaces()]
        raise InputError(f"unknown colour space '{colorspace}' in the OpenColorIO config "
                         f"{config.getName() or config_path} (e.g. {', '.join(known[:8])})")
    linear = space.getEncoding() == "scene-linear" or (
        not space.getEncoding() and space.getReferenceSpaceType() == ocio.REFERENCE_SPACE_SCENE
        and not space.isData() and "lin" in space.getName().lower())
    if not linear:
        return EngineEncoding(space.getName(), None, config_path)
    log_space = config.getRoleColorSpace(LOG_ROLE) or config.getRoleColorSpace("color_timing")
    if not log_space:
        raise InputError(f"the OpenColorIO config has no '{LOG_ROLE}' role: scene-linear plates need a log "
                         "encoding for the engines", config_path)
    return EngineEncoding(space.getName(), log_space, config_path)
