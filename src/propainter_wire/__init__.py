"""propainter-wire: remove wires, rigs and objects from video.

Public API: ``inpaint`` (files in, files out), ``inpaint_arrays`` (in memory),
``InpaintConfig`` (every setting).
"""

__version__ = "0.1.0"

from .config import InpaintConfig


def inpaint(*args, **kwargs):
    """See ``propainter_wire.api.inpaint``."""
    from .api import inpaint as _inpaint

    return _inpaint(*args, **kwargs)


def inpaint_arrays(*args, **kwargs):
    """See ``propainter_wire.api.inpaint_arrays``."""
    from .api import inpaint_arrays as _inpaint_arrays

    return _inpaint_arrays(*args, **kwargs)


__all__ = ["InpaintConfig", "inpaint", "inpaint_arrays", "__version__"]
