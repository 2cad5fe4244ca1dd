"""Step 2: recurrent flow completion inside the flow masks, in padded sub-videos."""

from __future__ import annotations

import contextlib

import torch

from ...pipeline.stages import Stages
from ...pipeline.windows import flow_completion_spans
from ...runtime.memory import retry_on_resource_error
from ...runtime.precision import PrecisionPolicy, cudnn_autotune
from .policy import MemoryPolicy
from .store import ClipStore

MIN_SUBVIDEO = 10  # out of memory, sub-videos are halved down to this many flows


def complete_flows(net: torch.nn.Module, half: torch.dtype | None, flows_f: torch.Tensor, flows_b: torch.Tensor,
                   flow_masks: torch.Tensor, subvideo_length: int, stages: Stages, *, store: ClipStore,
                   memory: MemoryPolicy, precision: PrecisionPolicy) -> tuple[torch.Tensor, torch.Tensor]:
    """Complete the flows inside the flow masks.

    Out of memory (or a library refusing a size), the sub-videos are halved (down to
    ``MIN_SUBVIDEO`` flows) and the stage starts over; results then differ slightly.

    Args:
        net, half: the flow-completion network and its half dtype (see ``models.flow_completion_net``).
        flows_f, flows_b: (T-1, 2, H, W) pixels.
        flow_masks: (T, 1, H, W) bool.
        subvideo_length: flows per sub-video.
    Returns:
        completed (T-1, 2, H, W) forward and backward flows in ``memory.flow_dtype``, in ``store``.
    """

    def lengths():
        length = subvideo_length
        yield length
        while length > MIN_SUBVIDEO:
            length = max(MIN_SUBVIDEO, min(length, flows_f.shape[0]) // 2)
            yield length

    with stages("complete") as bar, cudnn_autotune("complete" in memory.autotune_stages):
        return retry_on_resource_error(
            lambda length: _complete_spans(net, half, flows_f, flows_b, flow_masks, length, bar, store=store,
                                           memory=memory, precision=precision),
            lengths(), stage="flow completion",
            describe=lambda length: f"retrying in sub-videos of {length} flows (results differ slightly "
                                    f"from one {subvideo_length}-flow sub-video)")


def _complete_spans(net: torch.nn.Module, half: torch.dtype | None, flows_f: torch.Tensor, flows_b: torch.Tensor,
                    flow_masks: torch.Tensor, subvideo_length: int, bar, *, store: ClipStore, memory: MemoryPolicy,
                    precision: PrecisionPolicy) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow completion over padded sub-videos of ``subvideo_length`` flows (see :func:`complete_flows`).

    In a half precision on a GPU the network's weights and inputs are in that dtype, as the
    reference does with ``--fp16`` (autocast would keep fp32 copies of many activations: more
    memory for the same arithmetic).
    """
    dev = store.device
    if store.bounded:  # per-frame layers in chunks of frames
        h, w = flows_f.shape[-2:]
        # (the sequence-wide tensors, ~24 values per pixel and flow, come on top: ~4 GiB at 720p x 90)
        # at least 4 frames per chunk: each chunk re-encodes 8 frames of context on either side
        net.frames_per_chunk = max(4, net.frames_for_budget(h, w, memory.stage_budget_bytes, half or torch.float32))
    else:
        net.frames_per_chunk = None
    keep = memory.flow_dtype  # = the network's output dtype: kept exactly
    out_f = store.alloc("completed_f", tuple(flows_f.shape), keep)
    out_b = store.alloc("completed_b", tuple(flows_f.shape), keep)
    writer = store.writer()
    both = memory.both_directions_at_once(*flows_f.shape[-2:])
    dtype = half or torch.float32  # the network's

    def known(flows: torch.Tensor, masks: torch.Tensor, span, backward: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """A direction's flows (1, L, 2, H, W) and masks (1, L, 1, H, W) of ``span`` on the device in the
        net's dtype, from the span's masks (1, L+1, 1, H, W): forward flow i uses frame i's mask,
        backward flow i frame i+1's."""
        return (flows[span.start:span.stop].unsqueeze(0).to(dev, dtype),
                (masks[:, 1:] if backward else masks[:, :-1]).to(dtype))

    for span in flow_completion_spans(flows_f.shape[0], subvideo_length):
        mm = flow_masks[span.start:span.stop + 1].unsqueeze(0).to(dev)  # (1, L+1, 1, H, W) bool
        with contextlib.nullcontext() if half is not None else precision.autocast(dev, "flow_completion"):
            if both:  # small frames: the directions as one batch (half the kernel launches)
                done = zip((out_f, out_b), net.complete_both(*known(flows_f, mm, span, False),
                                                              *known(flows_b, mm, span, True)), strict=True)
            else:  # one direction at a time: forward_bidirect_flow + combine_flow's arithmetic, half the tensors
                done = ((out, net.complete_direction(*known(flows, mm, span, backward), backward=backward))
                        for flows, out, backward in ((flows_f, out_f, False), (flows_b, out_b, True)))
            for out, completed in done:
                writer.write(out, slice(span.keep_start, span.keep_stop), completed[0, span.local_keep], keep)
                del completed
        bar.update()
    writer.finish()
    return out_f, out_b
