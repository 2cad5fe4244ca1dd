"""CUDA graphs for loops of small kernels (RAFT's refinement).

RAFT refines each flow with 20 recurrent steps of about a hundred small kernels
on 1/8-scale maps: launched one by one from Python the GPU waits on the CPU
(about 40 % idle at 720p on an H100). A CUDA graph records one chunk's kernels
once and replays them with a single launch. Replays compute exactly what the
recorded calls compute, on new inputs copied into the graph's input buffers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

import torch

log = logging.getLogger("propainter_wire")


class GraphedCall:
    """``fn`` recorded as a CUDA graph for inputs shaped like ``example_inputs``.

    Calls copy the inputs into the graph's own buffers, replay the graph and return
    its output tensors, which the next call overwrites: copy what must outlive it.

    Args:
        fn: a function of CUDA tensors returning a tensor (or tuple of tensors) that
            makes no host synchronisation (no ``.item()``, no data-dependent shapes),
            already run once eagerly with these shapes (lazy library set-up is not recordable).
        example_inputs: tensors giving the input shapes, dtypes and device.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], example_inputs: tuple[torch.Tensor, ...]):
        self.inputs = tuple(x.clone() for x in example_inputs)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = fn(*self.inputs)

    def __call__(self, *inputs: torch.Tensor):
        for buffer, x in zip(self.inputs, inputs, strict=True):
            buffer.copy_(x)
        self.graph.replay()
        return self.outputs


class GraphCache:
    """Replays a recorded graph for calls whose inputs repeat a shape.

    ``run(key, fn, *inputs)``: the first call of a key runs ``fn`` eagerly (which also
    sets up cuDNN/cuBLAS for it), the second records a graph and replays it, later
    ones replay. At most ``max_graphs`` graphs are kept (each holds its own memory
    pool, as large as one eager call's peak); other keys run eagerly. A failed
    recording disables graphs for the cache's lifetime and runs eagerly.

    Args:
        enabled: False runs everything eagerly (CPU tensors always do).
    """

    def __init__(self, enabled: bool = True, max_graphs: int = 1):
        self.enabled = enabled
        self.max_graphs = max_graphs
        self.graphs: dict[Hashable, GraphedCall] = {}
        self.seen: set[Hashable] = set()
        self.replays = 0

    def run(self, key: Hashable, fn: Callable[..., torch.Tensor], *inputs: torch.Tensor):
        if not self.enabled or not inputs[0].is_cuda or torch.cuda.is_current_stream_capturing():
            return fn(*inputs)
        graph = self.graphs.get(key)
        if graph is None:
            if key not in self.seen or len(self.graphs) >= self.max_graphs:
                self.seen.add(key)
                return fn(*inputs)
            try:
                torch.cuda.empty_cache()  # the graph gets its own pool: hand the eager call's cached blocks back
                graph = GraphedCall(fn, inputs)
            except RuntimeError as exc:  # a kernel that cannot be recorded: run eagerly from now on
                log.warning("CUDA graph recording failed (%s); running eagerly", str(exc).splitlines()[0][:200])
                self.enabled = False
                return fn(*inputs)
            self.graphs[key] = graph
        self.replays += 1
        return graph(*inputs)

    def close(self) -> None:
        """Drop the graphs and their memory pools."""
        self.graphs.clear()
        self.seen.clear()
