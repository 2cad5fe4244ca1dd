"""The later stages' CUDA kernels, loaded on a side thread while RAFT computes the flows.

CUDA loads a kernel's module the first time the kernel runs, about 20 ms each (a fresh
process on an H100: a new 3x3 convolution configuration 25 ms, against 2.5 ms with eager
module loading; ``benchmarks/cold_probe.py``); the later stages use dozens of kernels.
Module loading is per process, so running the flow-completion network and the inpainter
once on small stand-in inputs of the clip's size loads them for the main thread too; their
results are discarded and nothing of the networks' state changes, so the clip's results
are unaffected.

Only for frames of 3/4 of 720p's pixels or more: there RAFT keeps the GPU busy and the
thread's work hides behind it. H100, fp16, interleaved A/B: 720p x 80 8.34/8.52 s against
8.76/9.06 s; 1080p x 50 11.72/11.94 against 11.88 s; at 432x240 RAFT is bound by its kernel
launches and the thread slowed it: 3.09/3.42 against 2.92/2.99 s. The tuning switch ``preload``
(docs/tuning.md): False = never, True = at every size.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from ...runtime.memory import first_line
from ...runtime.precision import PrecisionPolicy
from .models import ProPainterModels, flow_completion_net
from .synthesis import attention_backends

log = logging.getLogger("propainter_wire")

# frames (pixels, at processing size) from which the later stages' kernels are preloaded while RAFT runs
PRELOAD_MIN_PIXELS = 1280 * 720 * 3 // 4
PARTS = ("flow_completion", "inpainter")


class Preloader:
    """Starts, and waits for, one clip's preloading (GPU only); reusable clip after clip."""

    def __init__(self, models: ProPainterModels, device: torch.device, precision: PrecisionPolicy,
                 enabled: bool | None = None) -> None:
        self.models, self.device, self.precision, self.enabled = models, device, precision, enabled
        self.pending: dict[str, Future] = {}

    def start(self, h: int, w: int, length: int) -> None:
        """Place the flow-completion and inpainting networks and run each once on stand-in inputs of
        (h, w), on a thread and a side stream (GPU only; once per clip). Called once RAFT's CUDA graph
        is recorded (a capture must not see other threads' CUDA calls)."""
        large = h * w >= PRELOAD_MIN_PIXELS
        if self.device.type != "cuda" or self.pending or self.enabled is False or (not self.enabled and not large):
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preload")
        stream = torch.cuda.Stream(self.device)
        self.pending = {name: pool.submit(self._run, name, stream, h, w, length) for name in PARTS}
        pool.shutdown(wait=False)

    def wait(self, name: str) -> None:
        """Wait for ``name``'s part of the preloading, if it was started."""
        future = self.pending.pop(name, None)
        if future is not None:
            future.result()

    def settle(self) -> None:
        """Wait for every part still pending (a clip that failed before it needed them), errors ignored."""
        for name in list(self.pending):
            with contextlib.suppress(Exception):
                self.wait(name)

    def _run(self, name: str, stream, h: int, w: int, length: int) -> None:
        """One network's part of :meth:`start` (on the preload thread)."""
        dev = self.device
        try:
            with torch.cuda.stream(stream), torch.inference_mode():  # networks placed here, on the side stream
                frames = min(3, length)
                gen = torch.Generator(device=dev).manual_seed(0)
                if name == "flow_completion":
                    net, half = flow_completion_net(self.models, self.precision, dev)
                    dtype = half or torch.float32
                    flows = torch.randn(1, frames - 1, 2, h, w, device=dev, generator=gen).to(dtype)
                    masks = torch.zeros(1, frames - 1, 1, h, w, device=dev, dtype=dtype)
                    masks[..., h // 3:h // 2, w // 3:w // 2] = 1
                    with contextlib.nullcontext() if half is not None else self.precision.autocast(dev, name):
                        net.complete_direction(flows, masks)
                else:
                    net = self.models.inpainter
                    images = torch.rand(1, frames, 3, h, w, device=dev, generator=gen) * 2 - 1
                    masks = torch.zeros(1, frames, 1, h, w, device=dev, dtype=torch.bool)
                    masks[..., h // 3:h // 2, w // 3:w // 2] = True
                    flows = torch.zeros(1, frames - 2, 2, h, w, device=dev)
                    with self.precision.autocast(dev, name), attention_backends(dev):
                        feats = net.encode(images, masks, masks)
                        net.forward_features(feats, flows, flows, masks, masks, frames - 1)
            stream.synchronize()  # the placed weights are ready for the main stream
        except Exception as exc:  # a failed preload only costs the time it would have saved
            log.debug("preloading %s: %s", name, first_line(exc))
            with contextlib.suppress(Exception):  # (the main thread meets a lasting CUDA error itself)
                stream.synchronize()
