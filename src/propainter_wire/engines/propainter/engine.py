"""The ProPainter engine: RAFT flow -> flow completion -> image propagation -> transformer.

Same semantics as the reference inference script at equal settings:

1. RAFT forward/backward flows between consecutive frames (fp32 unless asked).
2. Recurrent flow completion in sub-videos of ``subvideo_length`` flows (5 flows of
   context each side), then known flow kept outside the flow mask.
3. Non-learned image propagation in sub-videos of ``min(100, subvideo_length)``
   frames (10 frames of context each side).
4. Feature propagation + sparse transformer over sliding windows of local frames
   plus reference frames; overlapping outputs averaged in uint8 like the reference.

The clip stays on the host; only the frames, flows and masks of the chunk being
processed go to the device, so device memory is bounded by the window sizes,
not by the clip length. One engine runs any number of clips: the networks are loaded
once, and everything a clip needs (its :class:`~.store.ClipStore`) lives only for its run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ...config import InpaintConfig
from ...io.scratch import DiskArray
from ...pipeline.stages import Stages
from ...runtime.precision import resolve_precision
from ...tuning import Tuning
from ..base import EngineInput
from .completion import complete_flows
from .flows import compute_flows
from .models import (
    NETWORKS,
    ProPainterModels,
    configure_fused_epilogues,
    flow_completion_net,
    prepare_network,
    set_channels_last,
)
from .policy import MemoryPolicy
from .preload import Preloader
from .propagation import propagate
from .store import INPUT_CHUNK, ClipStore, FrameFiller, UnitFrames, pad_bottom_right
from .synthesis import synthesize

PAD_MULTIPLE = 8  # the networks downsample by 8 at most


class ProPainterEngine:
    """Inpainting with the ProPainter networks (needs the three checkpoints).

    Args:
        weights_dir: the folder of the three checkpoints (unused when ``models`` is given).
        device: where the networks run.
        precision: ``fp32``, ``tf32``, ``fp16``, ``bf16`` or ``auto`` (see ``runtime.precision``).
        models: networks already loaded (shared with other engines: only their memory format is set).
        tuning: the run-time switches (``docs/tuning.md``); default ``Tuning()``, the measured defaults.
    """

    name = "propainter"

    def __init__(self, weights_dir: Path | None, device: torch.device | str = "cpu", precision: str = "fp32",
                 models: ProPainterModels | None = None, tuning: Tuning | None = None) -> None:
        self.device = torch.device(device)
        self.tuning = tuning or Tuning()
        self.policy = resolve_precision(precision, self.device)
        self.memory = MemoryPolicy.choose(self.tuning, self.device, self.policy)
        if models is None:
            # on a GPU the flow-completion and inpainting checkpoints are read while RAFT runs
            models = ProPainterModels.load(
                weights_dir, self.device, defer=self.device.type == "cuda",
                prepare=lambda name, net: prepare_network(name, net, self.policy, self.memory.channels_last))
        else:
            for name in NETWORKS:
                set_channels_last(name, getattr(models, name), self.memory.channels_last)
        self.models = models
        configure_fused_epilogues(models.raft, self.tuning.fused_epilogues, self.device, self.policy)
        self.preloader = Preloader(models, self.device, self.policy, enabled=self.memory.preload)

    # -- the stages, each on a clip's store (default: whole-clip tensors on the host) -------------
    def default_store(self) -> ClipStore:
        return ClipStore(device=self.device, place=torch.device("cpu"))

    def compute_flows(self, frames: torch.Tensor, iters: int, stages: Stages,
                      ready: Callable[[int], None] | None = None,
                      store: ClipStore | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 1, RAFT: see :func:`.flows.compute_flows`; the later stages' kernels preload meanwhile."""
        return compute_flows(self.models.raft, frames, iters, stages, store=store or self.default_store(),
                             memory=self.memory, precision=self.policy, ready=ready, preload=self.preloader.start)

    def complete_flows(self, flows_f: torch.Tensor, flows_b: torch.Tensor, flow_masks: torch.Tensor,
                       subvideo_length: int, stages: Stages,
                       store: ClipStore | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 2, flow completion: see :func:`.completion.complete_flows`."""
        self.preloader.wait("flow_completion")
        net, half = flow_completion_net(self.models, self.policy, self.device)
        return complete_flows(net, half, flows_f, flows_b, flow_masks, subvideo_length, stages,
                              store=store or self.default_store(), memory=self.memory, precision=self.policy)

    def propagate(self, frames: torch.Tensor, masks: torch.Tensor, flows_f: torch.Tensor, flows_b: torch.Tensor,
                  subvideo_length: int, stages: Stages,
                  store: ClipStore | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 3, image propagation: see :func:`.propagation.propagate`."""
        return propagate(frames, masks, flows_f, flows_b, subvideo_length, stages,
                         store=store or self.default_store(), memory=self.memory)

    def synthesize(self, updated: torch.Tensor, masks: torch.Tensor, updated_masks: torch.Tensor,
                   flows_f: torch.Tensor, flows_b: torch.Tensor, original_u8: torch.Tensor, config: InpaintConfig,
                   stages: Stages, on_final: Callable[[int, np.ndarray], None] | None = None,
                   store: ClipStore | None = None) -> np.ndarray | DiskArray:
        """Step 4, feature propagation and transformer windows: see :func:`.synthesis.synthesize`."""
        self.preloader.wait("inpainter")
        return synthesize(self.models.inpainter, updated, masks, updated_masks, flows_f, flows_b, original_u8,
                          config, stages, store=store or self.default_store(), memory=self.memory,
                          precision=self.policy, on_final=on_final)

    # -- the whole engine ------------------------------------------------------------
    def run(self, inp: EngineInput, config: InpaintConfig, stages: Stages,
            on_final: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray | UnitFrames:
        """Inpaint a clip; see ``Engine``.

        ``on_final(index, frame)`` receives each (H, W, 3) uint8 frame as soon as no later window
        changes it.

        Returns:
            (T, H, W, 3) float32 frames in [0, 1]: an array, or (with a scratch, or when every frame
            went to ``on_final`` already) a :class:`~.store.UnitFrames` reading the uint8 output one
            frame at a time.
        """
        self.preloader.settle()  # (left by a stage run on its own)
        single = inp.length == 1  # one frame: a still two-frame clip, so the networks fill it spatially
        h, w = inp.size
        emit = None
        if on_final is not None and not single:
            def emit(idx: int, frame_u8: np.ndarray) -> None:  # 8-bit results go out as they are
                on_final(idx, frame_u8[:h, :w])

        try:
            with torch.inference_mode(), self.policy.tf32_context():
                # 0. the clip's store and its compact arrays: uint8 frames, bool masks
                store, original, masks, flow_masks, fill_frames = self._clip_arrays(inp, single)
                # 1. flows (RAFT), the frames filled in as RAFT reaches them (they may still be decoding)
                flows_f, flows_b = self.compute_flows(original, config.raft_iters, stages, ready=fill_frames.until,
                                                      store=store)
                fill_frames.until(inp.length)
                # 2. flow completion
                flows_f, flows_b = self.complete_flows(flows_f, flows_b, flow_masks, config.subvideo_length, stages,
                                                       store=store)
                # 3. image propagation
                updated, updated_masks = self.propagate(original, masks, flows_f, flows_b, config.subvideo_length,
                                                        stages, store=store)
                # 4. synthesis: feature propagation + transformer windows, composited and averaged in uint8
                out = self.synthesize(updated, masks, updated_masks, flows_f, flows_b, original, config, stages,
                                      on_final=emit, store=store)
        finally:
            self.preloader.settle()  # a failed clip leaves no thread behind
        # 5. hand-over
        if isinstance(out, DiskArray) or emit is not None:
            return UnitFrames(out, h, w)  # converted only where read again
        out = out[:1 if single else inp.length, :h, :w]
        return out.astype(np.float32) / 255.0

    def _clip_arrays(self, inp: EngineInput, single: bool):
        """The clip's :class:`ClipStore`; its padded (T, H', W', 3) uint8 frames (filled on demand by the
        returned :class:`FrameFiller`), and (T, 1, H', W') bool masks and flow masks, filled now."""
        t = 2 if single else inp.length
        h, w = inp.size
        ph, pw = (-h) % PAD_MULTIPLE, (-w) % PAD_MULTIPLE
        shape = (t, h + ph, w + pw)
        store = ClipStore.for_clip(self.device, (*shape, 3), self.memory.resident_budget(),
                                   scratch=None if single else inp.scratch)
        original = store.alloc("frames", (*shape, 3), torch.uint8)
        masks = store.alloc("masks", (t, 1, *shape[1:]), torch.bool)
        flow_masks = store.alloc("flow_masks", (t, 1, *shape[1:]), torch.bool)
        for a in range(0, inp.length, INPUT_CHUNK):
            b = min(inp.length, a + INPUT_CHUNK)
            for dst, src in ((masks, inp.masks), (flow_masks, inp.flow_masks)):
                # (plain copies: nothing is queued on the GPU yet for them to wait for, and staging them
                # page-locked cost 0.05 s at 720p x 80)
                padded = pad_bottom_right(np.asarray(src[a:b], dtype=bool), ph, pw)
                dst[a:b] = torch.from_numpy(padded)[:, None]
        fill_frames = FrameFiller(inp.frames, original, ph, pw)
        if single:
            fill_frames.until(1)
            original[1], masks[1], flow_masks[1] = original[0], masks[0], flow_masks[0]
        return store, original, masks, flow_masks, fill_frames
