"""The three networks of the ProPainter engine: loading (optionally deferred), placing, and preparing.

:class:`ProPainterModels` holds RAFT, the flow-completion network and the inpainter; the
functions below prepare a freshly loaded network for a precision and a memory layout
(weights precast to the autocast dtype, channels-last convolutions, RAFT's fused epilogues).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from ...runtime.precision import PrecisionPolicy, precast_for_autocast

log = logging.getLogger("propainter_wire")

NETWORKS = ("raft", "flow_completion", "inpainter")


class ProPainterModels:
    """The three networks, on their device, in eval mode, without gradients.

    :meth:`load` can defer the flow-completion and inpainting networks: their checkpoints
    (nine tenths of the bytes) are read on a thread while RAFT, which only needs its own,
    computes the flows; each is placed on the device the first time it is asked for, on
    the asking thread (so nothing else touches the GPU while RAFT records its CUDA graphs).
    A checkpoint error surfaces there, as the ``WeightsError`` a direct load raises.
    """

    def __init__(self, raft: torch.nn.Module, flow_completion: torch.nn.Module | None = None,
                 inpainter: torch.nn.Module | None = None, pending: Future | None = None,
                 place: Callable[[str, object], torch.nn.Module] | None = None) -> None:
        self.raft = raft
        self._nets = {"flow_completion": flow_completion, "inpainter": inpainter}
        self._pending = pending  # -> {name: weights.PendingNetwork}
        self._place = place
        self._placing = threading.Lock()  # a network may be asked for on two threads (see ProPainterEngine)

    @property
    def flow_completion(self) -> torch.nn.Module:
        return self._get("flow_completion")

    @property
    def inpainter(self) -> torch.nn.Module:
        return self._get("inpainter")

    def _get(self, name: str) -> torch.nn.Module:
        with self._placing:
            if self._nets[name] is None:
                self._nets[name] = self._place(name, self._pending.result()[name])
            return self._nets[name]

    @classmethod
    def load(cls, weights_dir: Path, device: torch.device,
             prepare: Callable[[str, torch.nn.Module], None] = lambda name, net: None,
             defer: bool = False) -> ProPainterModels:
        """Load the checkpoints of ``weights_dir`` onto ``device``; ``prepare(name, net)`` runs on each
        network once placed (``name``: 'raft', 'flow_completion' or 'inpainter'). ``defer``: see above."""
        from ...weights import FLOW_COMPLETION_FILE, INPAINTER_FILE, RAFT_FILE, open_checkpoint, read_network

        weights_dir = Path(weights_dir)
        files = {"flow_completion": weights_dir / FLOW_COMPLETION_FILE, "inpainter": weights_dir / INPAINTER_FILE}

        def place(name: str, pending) -> torch.nn.Module:
            net = pending.place(device).requires_grad_(False)
            prepare(name, net)
            return net

        if not defer:
            raft = place("raft", read_network(RAFT_FILE, weights_dir / RAFT_FILE))
            rest = {name: read_network(path.name, path) for name, path in files.items()}
            return cls(raft, place("flow_completion", rest["flow_completion"]), place("inpainter", rest["inpainter"]))

        # opened here: a missing file is reported at once, and the thread reads these files
        # even if the folder goes away before it gets to them
        handles: dict[str, object] = {}
        try:
            for name, path in files.items():
                handles[name] = open_checkpoint(path)
            raft = place("raft", read_network(RAFT_FILE, weights_dir / RAFT_FILE))
        except BaseException:
            for handle in handles.values():
                handle.close()
            raise

        def read_rest() -> dict:
            try:
                return {name: read_network(path.name, path, handles[name]) for name, path in files.items()}
            finally:
                for handle in handles.values():
                    handle.close()

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        pending = pool.submit(read_rest)
        pool.shutdown(wait=False)
        return cls(raft, pending=pending, place=place)


def convs_channels_last(net: torch.nn.Module) -> None:
    """Store the 2-D convolution weights channels-last, in place.

    cuDNN or oneDNN then run those convolutions in NHWC and return NHWC results,
    instead of reordering every input and output; values are the same up to the
    convolution algorithm's summation order.
    """
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)


def set_channels_last(name: str, net: torch.nn.Module, parts: Mapping[str, tuple[str, ...]]) -> None:
    """Network ``name``'s parts listed in ``parts`` (see ``policy.channels_last_parts``) go channels-last."""
    for attr in parts.get(name, ()):
        convs_channels_last(getattr(net, attr) if attr else net)


def prepare_network(name: str, net: torch.nn.Module, precision: PrecisionPolicy,
                    parts: Mapping[str, tuple[str, ...]]) -> None:
    """A freshly loaded network: conv/linear weights stored in the autocast dtype of its stage (same
    values, no per-call casts), then the memory format of its convolutions."""
    # (flow completion converts itself to its half dtype when it first runs: see flow_completion_net)
    if name in ("raft", "inpainter") and precision.stage_dtype(name) is not None:
        precast_for_autocast(net, precision.stage_dtype(name))
    set_channels_last(name, net, parts)


def flow_completion_net(models: ProPainterModels, precision: PrecisionPolicy,
                        device: torch.device) -> tuple[torch.nn.Module, torch.dtype | None]:
    """The flow-completion network and its half dtype (None: float32 under the stage's autocast).

    In a half precision on a GPU its weights are converted to that dtype on first use, as the
    reference does with ``--fp16`` (autocast would keep fp32 copies of many activations).
    """
    net = models.flow_completion
    half = precision.stage_dtype("flow_completion") if device.type == "cuda" else None
    if half is not None and next(net.parameters()).dtype != half:
        net.to(half)
    return net, half


def configure_fused_epilogues(raft: torch.nn.Module, mode: str, device: torch.device,
                              precision: PrecisionPolicy) -> None:
    """RAFT's convolution + bias (+ batch norm) + ReLU as single cuDNN kernels on a GPU in half precision
    (``flow.fused_conv.conv_relu``); ``mode`` is the tuning switch ``fused_epilogues``: "1" on, "0" the library
    layers, "update" the update block's only. A cuDNN that fails the fused kernels' check gets the
    library layers, with a warning."""
    use_fused = getattr(raft, "use_fused_epilogues", None)  # (absent from stand-in networks)
    if use_fused is None:
        return
    raft_dtype = precision.stage_dtype("raft")
    if mode != "0" and raft_dtype is not None and device.type == "cuda" and torch.cuda.is_available():
        from ...flow.fused_conv import fused_conv_relu_check
        from ...runtime.check_cache import remembered

        # a pass is remembered per GPU and software stack: the check's first cuDNN plan costs a cold run
        problem = remembered(f"fused-conv-relu-{raft_dtype}", device, lambda: fused_conv_relu_check(device, raft_dtype))
        if problem is not None:  # a cuDNN without the fused engines, or a wrong result: the library layers
            log.warning("cuDNN's fused convolution + ReLU failed its check (%s); RAFT uses the separate "
                        "layers", problem)
            mode = "0"
    use_fused(mode)
