"""Where and how a run computes: device choice, precision policy, transfers, CUDA graphs.

A low layer: nothing here imports the engines, the API, the CLI, ``doctor`` or ``weights``
(``propainter_wire.doctor`` builds its self-tests on :mod:`.device` and :mod:`.precision`).
"""

from .device import gpu_self_check, resolve_device
from .precision import PrecisionPolicy, resolve_precision

__all__ = ["PrecisionPolicy", "gpu_self_check", "resolve_device", "resolve_precision"]
