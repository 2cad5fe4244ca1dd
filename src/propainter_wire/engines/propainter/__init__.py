"""The ProPainter engine as a package: one module per stage, the clip's storage, the networks, the policy.

- ``engine``: :class:`ProPainterEngine`, whose ``run`` calls the stages in turn;
- ``flows`` (1. RAFT), ``completion`` (2. flow completion), ``propagation`` (3. image propagation),
  ``synthesis`` (4. feature propagation and transformer windows);
- ``store``: a clip's whole-length arrays (device, host or disk) and the frames' hand-over;
- ``models``: loading and preparing the networks; ``preload``: their kernels loaded during RAFT;
- ``policy``: memory and layout choices from the tuning switches, device and precision.
"""

from .engine import PAD_MULTIPLE, ProPainterEngine
from .models import ProPainterModels
from .policy import MemoryPolicy
from .store import ClipStore, DiskTensor, UnitFrames

__all__ = ["PAD_MULTIPLE", "ClipStore", "DiskTensor", "MemoryPolicy", "ProPainterEngine", "ProPainterModels",
           "UnitFrames"]
