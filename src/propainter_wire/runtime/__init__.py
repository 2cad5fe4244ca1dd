"""Where and how a run computes: device choice, precision policy, the ``doctor`` checks.

``doctor`` (``propainter_wire.runtime.doctor``) is not imported here: it is only
needed by the ``doctor`` command.
"""

from .device import gpu_self_check, resolve_device
from .precision import PrecisionPolicy, resolve_precision

__all__ = ["PrecisionPolicy", "gpu_self_check", "resolve_device", "resolve_precision"]
