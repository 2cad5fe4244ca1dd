"""Step 1: RAFT's forward and backward flows between consecutive frames of a clip."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...pipeline.stages import Stages
from ...runtime.cuda_graph import GraphCache
from ...runtime.memory import retry_on_resource_error
from ...runtime.precision import PrecisionPolicy, cudnn_autotune
from ...runtime.transfer import upload
from .policy import MemoryPolicy
from .store import ClipStore, signed

# out of memory (or a library refusing a size): a chunk is retried with fewer pairs at once, then with
# on-demand correlation, then one pair at a time
RAFT_FALLBACKS = ({}, {"pairs_per_chunk": 2}, {"corr": "local", "pairs_per_chunk": 2},
                  {"corr": "local", "pairs_per_chunk": 1})


def compute_flows(raft: torch.nn.Module, frames: torch.Tensor, iters: int, stages: Stages, *, store: ClipStore,
                  memory: MemoryPolicy, precision: PrecisionPolicy, ready: Callable[[int], None] | None = None,
                  preload: Callable[[int, int, int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RAFT flows of a clip, in chunks of ``memory.raft_chunk`` frames.

    Args:
        frames: (T, H, W, 3) uint8.
        iters: RAFT's refinement steps.
        ready: ``ready(e)`` is called before frames ``0 .. e-1`` are first read (it fills them in).
        preload: ``preload(h, w, T)`` is called once RAFT's CUDA graph is recorded (and again at the
            end, for a clip too short to get there): the later stages' kernels load meanwhile.
    Returns:
        flows_f, flows_b: (T-1, 2, H, W) pixels in ``memory.flow_dtype``, in ``store``; ``flows_f[t]``
        maps frame t to t+1, ``flows_b[t]`` frame t+1 to t.
    """
    from ...flow import raft as raft_module

    t, h, w, _ = frames.shape
    device = store.device
    chunk = memory.raft_chunk(h, w)
    budget = memory.raft_budget(h, w)
    raft_dtype = precision.stage_dtype("raft")
    corr_dtype = torch.float16 if memory.raft_half_pyramid and raft_dtype == torch.float16 else torch.float32
    starts = list(range(0, t - 1, chunk - 1))
    if memory.equal_raft_chunks() and len(starts) > 1 and t - starts[-1] < chunk:
        # the last chunk reaches back to a full chunk (its first pairs computed twice, written once): every
        # chunk then has one shape, so one CUDA graph and one set of cuDNN plans serve them all, instead of
        # an eager remainder with plans of its own (on the CPU the extra pairs would only cost time)
        starts[-1] = t - chunk
    keep = memory.flow_dtype  # flow completion's input dtype
    out_f = store.alloc("raft_f", (t - 1, 2, h, w), keep)
    out_b = store.alloc("raft_b", (t - 1, 2, h, w), keep)
    graphs = GraphCache(enabled=memory.cuda_graphs)  # the refinement of equal-sized chunks replays one graph

    def eager(options: dict) -> None:  # graphs' pools hold memory: eager from here on
        graphs.close()
        graphs.enabled = False

    writer = store.writer()
    try:
        with stages("flow", total=len(starts)) as bar, precision.autocast(device, "raft"), \
                cudnn_autotune("flow" in memory.autotune_stages):
            for k, s in enumerate(starts):
                if preload is not None and (k == 2 or (k == 1 and not graphs.enabled)):  # graph recorded by chunk 1
                    preload(h, w, t)
                e = min(t, s + chunk)
                if ready is not None:
                    ready(e)
                f, b = retry_on_resource_error(
                    lambda options, chunk_frames=frames[s:e]: raft_module.bidirectional_flows(
                        raft, signed(upload(chunk_frames, device)), iters=iters, budget_bytes=budget,
                        corr_dtype=corr_dtype, graphs=graphs, **options),
                    RAFT_FALLBACKS, stage="RAFT", describe=lambda options: f"retrying with {options}",
                    before_retry=eager)
                done = starts[k - 1] + chunk - 1 if k else 0  # pairs before this one are written already
                writer.write(out_f, slice(done, e - 1), f[done - s:], keep)
                writer.write(out_b, slice(done, e - 1), b[done - s:], keep)
                bar.update()
            writer.finish()
            if preload is not None:
                preload(h, w, t)  # (a short clip: now)
    finally:
        # The graphs' pools are free by reference count. Their blocks stay cached: the allocator hands
        # them back to the card only when an allocation would otherwise fail, and the later stages'
        # budgets count cached memory as available. Emptying the cache here cost 0.12 s between the
        # stages at 1080p (H100), a device-wide synchronisation with nothing to gain on a card with room.
        graphs.close()
    return out_f, out_b
