"""Step 3: non-learned image propagation of known pixels into the masks, along the completed flows."""

from __future__ import annotations

import torch

from ...pipeline.propagation import propagate_images
from ...pipeline.stages import Stages
from ...pipeline.windows import propagation_spans
from .policy import MemoryPolicy
from .store import ClipStore, signed


def propagation_bytes_per_pixel(flow_dtype: torch.dtype) -> int:
    """Device bytes per pixel and frame of a propagation span moved whole: masked frames and masks
    (float32, 16), the outputs (16), two 2-channel flows as stored (8 in a half precision, 16 in
    float32; converted one frame at a time), and slack for the per-step temporaries (8). (Measured
    on an H200 before the in-place arithmetic of ``propagate``: ~135 bytes per pixel and frame.)"""
    return 16 + 16 + 4 * torch.empty((), dtype=flow_dtype).element_size() + 8


def propagate(frames: torch.Tensor, masks: torch.Tensor, flows_f: torch.Tensor, flows_b: torch.Tensor,
              subvideo_length: int, stages: Stages, *, store: ClipStore,
              memory: MemoryPolicy) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow-guided propagation of known pixels into the masks, in padded spans.

    Args:
        frames: (T, H, W, 3) uint8; masks: (T, 1, H, W) bool.
        flows_f, flows_b: (T-1, 2, H, W) completed flows, pixels.
    Returns:
        updated frames (T, 3, H, W) in [-1, 1] (in ``memory.frame_dtype``, the inpainter's input
        dtype) and the still-unfilled masks (T, 1, H, W) bool, in ``store``.
    """
    spans = propagation_spans(frames.shape[0], subvideo_length)
    t, h, w = frames.shape[:3]
    dev = store.device
    keep = memory.frame_dtype
    out_frames = store.alloc("updated", (t, 3, h, w), keep)
    out_masks = store.alloc("updated_masks", (t, 1, h, w), torch.bool)
    writer = store.writer()
    with stages("propagate", total=len(spans)) as bar:
        for span in spans:
            # a span over the budget leaves its flows where they are; the sweeps move them a frame at a time
            span_bytes = propagation_bytes_per_pixel(flows_f.dtype) * (span.stop - span.start) * h * w
            flows_at = dev if span_bytes <= memory.propagation_budget_bytes else store.place
            fr = signed(frames[span.start:span.stop].to(dev))
            mk = masks[span.start:span.stop].to(dev).float()
            ff = flows_f[span.start:span.stop - 1].to(flows_at)  # converted to float32 step by step
            fb = flows_b[span.start:span.stop - 1].to(flows_at)
            masked = fr.mul_(1 - mk)  # in place: one frame-sized buffer less on the device
            prop, updated = propagate_images(masked, ff, fb, mk, interpolation="nearest", device=dev)
            merged = prop.mul_(mk).add_(masked)  # = masked + prop * mk (addition commutes exactly)
            kept = slice(span.keep_start, span.keep_stop)
            writer.write(out_frames, kept, merged[span.local_keep], keep)
            writer.write(out_masks, kept, updated[span.local_keep] > 0.5, torch.bool)
            bar.update()
        writer.finish()
    return out_frames, out_masks
