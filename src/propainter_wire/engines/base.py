"""What every engine receives and returns.

An engine fills the masked region of a clip at *processing size*. Reading,
resizing, compositing at full resolution and writing are the pipeline's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import InpaintConfig
from ..io.scratch import Scratch
from ..pipeline.stages import Stages
from ..samples import unit_frames

__all__ = ["Engine", "EngineInput", "OnFinal", "unit_frames"]


@dataclass
class EngineInput:
    """A clip at processing size.

    Attributes:
        frames: (T, H, W, 3) float32 RGB in [0, 1], or uint8 in [0, 255] (8-bit frames read
            at their own size, passed through unconverted; see :func:`~propainter_wire.samples.unit_frames`).
        masks: (T, H, W) bool, the region to fill (the user's mask dilated by
            ``mask_dilation``); pixels outside it are never changed.
        flow_masks: (T, H, W) bool, where flow is not trusted (the user's mask
            dilated by ``flow_mask_dilation``).
        raw_masks: (T, H, W) bool, the user's mask as given (no dilation).
        scratch: when set, the arrays above may be :class:`~propainter_wire.io.scratch.DiskArray`
            stacks in it (indexable like arrays, read on demand), and an engine that can keeps its
            own whole-clip intermediates there too, so host memory does not grow with the clip.
    """

    frames: np.ndarray
    masks: np.ndarray
    flow_masks: np.ndarray
    raw_masks: np.ndarray
    scratch: Scratch | None = None

    @property
    def length(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


OnFinal = Callable[[int, np.ndarray], None]
"""``on_final(index, frame)``: frame ``index`` is final, (H, W, 3) at processing size, float32 in
[0, 1] or uint8 in [0, 255] (an 8-bit result, handed over without conversion)."""


class Engine(Protocol):
    """An inpainting engine.

    ``run`` returns (T, H, W, 3) float32 RGB in [0, 1] at processing size; only the
    pixels inside ``inp.masks`` are used by the pipeline. An engine that knows early
    that a frame will not change again passes it to ``on_final`` at once, so the
    pipeline can write it while the engine works on (an engine may also never call it).
    """

    name: str

    def run(self, inp: EngineInput, config: InpaintConfig, stages: Stages,
            on_final: OnFinal | None = None) -> np.ndarray: ...
